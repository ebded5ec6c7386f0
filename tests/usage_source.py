"""A real Prometheus for the usage tests: two weeks of a product's workload written as
OpenMetrics, backfilled with ``promtool tsdb create-blocks-from openmetrics``, then served by a
``prometheus`` process on a free port, under the metric names clusters export."""

import math
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import eventually

DAY = 86400
GIB = 1024**3


@dataclass(frozen=True)
class Workload:
    """What one namespace uses on average (cores, GiB), with a daily rhythm of +-30 % around
    it; storage is what its volumes hold of what their claims hold."""

    namespace: str
    cpu: float
    memory_gib: float
    storage_used_gib: float = 0.0
    storage_claim_gib: float = 0.0
    pods: int = 1  # kube_pod_info series (0: the namespace runs nothing)


# What the cluster's nodes can give (kube-state-metrics): cores and GiB, over two nodes.
ALLOCATABLE = (48.0, 192.0)


def openmetrics(workloads: list[Workload], end: float, days: int = 14, step: int = 120) -> str:
    """The history of ``workloads`` up to ``end`` (epoch seconds), one sample each ``step``,
    and the nodes' allocatable CPU and memory (:data:`ALLOCATABLE`)."""
    start = end - days * DAY
    times = [start + i * step for i in range(int((end - start) // step) + 1)]

    def rhythm(t: float) -> float:
        return 1 + 0.3 * math.sin(2 * math.pi * (t % DAY) / DAY)

    families = {
        "container_cpu_usage_seconds_total": [],
        "container_memory_working_set_bytes": [],
        "kubelet_volume_stats_used_bytes": [],
        "kubelet_volume_stats_capacity_bytes": [],
        "kube_pod_info": [],
        "kube_persistentvolumeclaim_info": [],
    }
    for w in workloads:
        labels = f'namespace="{w.namespace}",pod="app-0",container="app"'
        families["kube_pod_info"] += [
            f'kube_pod_info{{namespace="{w.namespace}",pod="app-{p}"}} 1 {t:.0f}'
            for p in range(w.pods)
            for t in times[-30:]
        ]
        used = 0.0
        rows = families["container_cpu_usage_seconds_total"]
        for i, t in enumerate(times):
            if i:
                # The counter grows by the rhythm's mean over the step: on average, w.cpu a second.
                used += w.cpu * step * (rhythm(t) + rhythm(t - step)) / 2
            rows.append(f"container_cpu_usage_seconds_total{{{labels}}} {used:.3f} {t:.0f}")
        memory = families["container_memory_working_set_bytes"]
        for t in times:
            value = w.memory_gib * GIB * rhythm(t)
            memory.append(f"container_memory_working_set_bytes{{{labels}}} {value:.0f} {t:.0f}")
        if w.storage_claim_gib:
            volume = f'namespace="{w.namespace}",persistentvolumeclaim="data"'
            families["kube_persistentvolumeclaim_info"] += [
                f"kube_persistentvolumeclaim_info{{{volume}}} 1 {t:.0f}" for t in times[-30:]
            ]
            for name, gib in (
                ("kubelet_volume_stats_used_bytes", w.storage_used_gib),
                ("kubelet_volume_stats_capacity_bytes", w.storage_claim_gib),
            ):
                families[name] += [f"{name}{{{volume}}} {gib * GIB:.0f} {t:.0f}" for t in times]
    cpu, memory = ALLOCATABLE
    families["kube_node_status_allocatable"] = [
        f'kube_node_status_allocatable{{node="node-{n}",resource="{resource}"}} {value:.0f} {t:.0f}'
        for n in (1, 2)
        for resource, value in (("cpu", cpu / 2), ("memory", memory / 2 * GIB))
        for t in times[-30:]
        if workloads  # a history without workloads is one that a live exporter fills
    ]
    lines = [row for rows in families.values() for row in rows]
    return "\n".join([*lines, "# EOF", ""])


class Prometheus:
    """``prometheus`` serving a TSDB that ``promtool`` filled with ``workloads``' history."""

    def __init__(self, root: Path, port: int, workloads: list[Workload], scrape: str | None = None):
        self.root, self.port = root, port
        self.url = f"http://127.0.0.1:{port}"
        self.data = root / "tsdb"
        self.data.mkdir(parents=True, exist_ok=True)
        history = root / "history.om"
        history.write_text(openmetrics(workloads, end=time.time()))
        config = "global:\n  scrape_interval: 15s\n"
        if scrape:  # a live exporter, scraped every second
            config += (
                "scrape_configs:\n  - job_name: live\n    scrape_interval: 1s\n"
                f'    static_configs:\n      - targets: ["{scrape}"]\n'
            )
        (root / "prometheus.yml").write_text(config)
        subprocess.run(  # noqa: S603 - Debian's promtool, fixed arguments
            # Week-long blocks: promtool's default of two hours made 168 of them, in 8 s.
            [shutil.which("promtool"), "tsdb", "create-blocks-from", "openmetrics",
             "--max-block-duration=168h", str(history), str(self.data)],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        self.process = None
        self.start()

    def start(self) -> None:
        self._log = (self.root / "prometheus.log").open("a")
        self.process = subprocess.Popen(  # noqa: S603 - Debian's prometheus, fixed arguments
            [shutil.which("prometheus"),
             f"--config.file={self.root / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.data}",
             "--storage.tsdb.retention.time=60d",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

        def ready():
            assert self.process.poll() is None, (self.root / "prometheus.log").read_text()[-2000:]
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:  # noqa: S310
                    return r.status == 200
            except (OSError, urllib.error.URLError):
                return False

        eventually(ready, timeout=60, message="prometheus did not get ready")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None
            self._log.close()


def binaries_or_skip() -> None:
    if shutil.which("prometheus") and shutil.which("promtool"):
        return
    if os.environ.get("CI"):
        pytest.fail(
            "prometheus is not installed; make test installs it (scripts/install-prometheus)"
        )
    pytest.skip("prometheus is not installed (make prometheus)")
