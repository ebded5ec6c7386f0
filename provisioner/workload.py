"""Simulated workload for the namespaces the reference provisioner created, so that a real
Prometheus has something to scrape on one machine: what each namespace uses is a steady share
of its quota (fixed per licence plate: some products busy, some idle) with a daily rhythm,
exported under the names clusters use (cAdvisor, the kubelet, kube-state-metrics).

The namespaces and their quotas are read from the GitOps repository's ``main``, as a cluster
would read them; the figures are a function of the time, so every scrape agrees with the last."""

import hashlib
import math
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

DAY = 86400
GIB = 1024**3
# What the simulated cluster's nodes can give, per cluster (kube_node_status_allocatable).
NODE_CPU_CORES = 64
NODE_MEMORY_GIB = 256


@dataclass(frozen=True)
class Namespace:
    cluster: str
    name: str
    cpu: float  # cores requested
    memory: float  # GiB requested
    storage: float  # GiB requested

    @property
    def plate(self) -> str:
        return self.name.rsplit("-", 1)[0]

    @property
    def share(self) -> float:
        """The share of its quota this namespace uses on average: 5 % to 90 %, by plate and
        environment (prod busier than the rest)."""
        digest = hashlib.sha256(self.name.encode()).digest()
        base = 0.05 + 0.85 * digest[0] / 255
        return base if self.name.endswith("-prod") else base / 3


def rhythm(t: float) -> float:
    """A day's shape around 1: busiest in the afternoon, quietest at night."""
    return 1 + 0.3 * math.sin(2 * math.pi * (t % DAY) / DAY)


def cpu_seconds(ns: Namespace, t: float) -> float:
    """The cAdvisor counter at ``t``: the integral of ``share * cpu * rhythm`` since the epoch."""
    rate = ns.share * ns.cpu
    return rate * (t + 0.3 * DAY / (2 * math.pi) * (1 - math.cos(2 * math.pi * (t % DAY) / DAY)))


def samples(namespaces: list[Namespace], t: float) -> list[tuple[str, dict, float]]:
    """(metric, labels, value) of every series at time ``t``."""
    found = []
    for ns in namespaces:
        pod = {"namespace": ns.name, "pod": f"{ns.plate}-app-0", "container": "app"}
        found.append(("container_cpu_usage_seconds_total", pod, cpu_seconds(ns, t)))
        memory = ns.share * ns.memory * GIB * rhythm(t)
        found.append(("container_memory_working_set_bytes", pod, memory))
        found.append(("kube_pod_info", {"namespace": ns.name, "pod": pod["pod"]}, 1))
        volume = {"namespace": ns.name, "persistentvolumeclaim": f"{ns.plate}-data"}
        found.append(("kube_persistentvolumeclaim_info", volume, 1))
        found.append(("kubelet_volume_stats_capacity_bytes", volume, ns.storage * GIB))
        found.append(("kubelet_volume_stats_used_bytes", volume, ns.share * ns.storage * GIB))
    for cluster in sorted({ns.cluster for ns in namespaces}):
        node = {"node": f"{cluster}-node-1"}
        found.append(("kube_node_status_allocatable", {**node, "resource": "cpu"}, NODE_CPU_CORES))
        found.append(
            ("kube_node_status_allocatable", {**node, "resource": "memory"}, NODE_MEMORY_GIB * GIB)
        )
    return found


def exposition(namespaces: list[Namespace], t: float) -> str:
    """The Prometheus text format of :func:`samples` (a scrape: no timestamps)."""
    lines = []
    for metric, labels, value in samples(namespaces, t):
        text = ",".join(f'{k}="{v}"' for k, v in labels.items())
        lines.append(f"{metric}{{{text}}} {float(value)!r}")
    return "\n".join(lines) + "\n"


def _amount(text: str) -> float:
    text = str(text)
    return float(text.removesuffix("Gi")) if text.endswith("Gi") else float(text)


def namespaces_on_main(repo) -> list[Namespace]:
    """The namespaces on the repository's ``main``, with their quotas' requests."""
    found = []
    paths = repo.git("ls-tree", "-r", "--name-only", repo.main, check=False).splitlines()
    for path in paths:
        parts = path.split("/")
        if len(parts) != 4 or parts[3] != "resourcequotas.yaml":
            continue
        docs = list(yaml.safe_load_all(repo.git("show", f"{repo.main}:{path}")))
        compute, storage = docs[0]["spec"]["hard"], docs[1]["spec"]["hard"]
        found.append(
            Namespace(
                cluster=parts[0],
                name=parts[2],
                cpu=_amount(compute["requests.cpu"]),
                memory=_amount(compute["requests.memory"]),
                storage=_amount(storage["requests.storage"]),
            )
        )
    return found


class MetricsServer:
    """``/metrics`` of the simulated workload, on ``host:port`` (0: a free port), in a thread.
    The namespaces are read again when ``main`` moves."""

    def __init__(self, repo, clock, host: str = "127.0.0.1", port: int = 0):
        self.repo, self.clock = repo, clock
        self._seen: tuple[str, list[Namespace]] = ("", [])
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = exposition(server.namespaces(), server.clock()).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # scraped every few seconds: not worth a log line
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://{host}:{self.port}/metrics"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="provisioner-metrics", daemon=True
        )

    def namespaces(self) -> list[Namespace]:
        head = self.repo.git("rev-parse", "--verify", "-q", self.repo.main, check=False).strip()
        with self._lock:
            if head != self._seen[0]:
                self._seen = (head, namespaces_on_main(self.repo) if head else [])
            return self._seen[1]

    def start(self) -> "MetricsServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
