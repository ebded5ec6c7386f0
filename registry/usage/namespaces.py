"""A product's usage: for each of its namespaces, CPU, memory and storage now, on average and
at peak over the window, read with the metric names clusters export (cAdvisor and the kubelet).
Kept per process for ``USAGE_CACHE_SECONDS``; never raises: a product whose usage cannot be read
gets :class:`Unmeasured` with the reason."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from flask import current_app

from ..reference import quotas
from ..reference.models import ENVIRONMENTS
from ..timeutil import utcnow
from .prometheus import Source, Unavailable

GIB = 1024**3


@dataclass(frozen=True)
class Figures:
    """One resource of one namespace: now, the window's average and its peak (cores or GiB),
    and for storage what the claims hold (GiB)."""

    now: float | None = None
    average: float | None = None
    peak: float | None = None
    capacity: float | None = None


@dataclass(frozen=True)
class Measured:
    """Every namespace of a product: ``namespaces[env][resource]`` (cpu, memory, storage)."""

    cluster: str
    window_days: int
    measured_at: str
    namespaces: dict[str, dict[str, Figures]] = field(default_factory=dict)
    available: bool = True
    reason: str = ""

    def of(self, env: str, resource: str) -> Figures:
        return self.namespaces.get(env, {}).get(resource, Figures())

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Unmeasured:
    cluster: str
    reason: str
    available: bool = False

    def of(self, env: str, resource: str) -> Figures:
        return Figures()


# What each figure is, in PromQL: sums per namespace of the plate's four namespaces. Containers
# only (container!=""): cAdvisor also reports the pod's cgroup, which would count it twice.
CPU = (
    "sum by (namespace) (rate(container_cpu_usage_seconds_total"
    '{{namespace=~"{ns}",container!=""}}[{rate}]))'
)
MEMORY = (
    'sum by (namespace) (container_memory_working_set_bytes{{namespace=~"{ns}",container!=""}})'
)
STEP = "15m"
STORAGE = 'sum by (namespace) (kubelet_volume_stats_used_bytes{{namespace=~"{ns}"}})'
CLAIMED = 'sum by (namespace) (kubelet_volume_stats_capacity_bytes{{namespace=~"{ns}"}})'


def queries(plate: str, window_days: int) -> dict[tuple[str, str], str]:
    """(resource, figure) → PromQL for the product ``plate``."""
    ns = f"{plate}-({'|'.join(ENVIRONMENTS)})"
    # Over the window, a point every STEP, each CPU point the rate over the STEP before it: every
    # sample counts once, and the peak is the busiest quarter hour. (Five-minute points cost
    # twice as much to evaluate for the same average.)
    window = f"[{window_days}d:{STEP}]"
    found = {}
    for resource, expression in (("cpu", CPU), ("memory", MEMORY), ("storage", STORAGE)):
        now = expression.format(ns=ns, rate="5m")
        over = expression.format(ns=ns, rate=STEP)
        found[(resource, "now")] = now
        found[(resource, "average")] = f"avg_over_time(({over}){window})"
        found[(resource, "peak")] = f"max_over_time(({over}){window})"
    found[("storage", "capacity")] = CLAIMED.format(ns=ns)
    return found


def source_for(cluster: str) -> Source | None:
    url = current_app.config["USAGE_PROMETHEUS_URLS"].get(cluster)
    if not url:
        return None
    return Source(
        url,
        token=current_app.config["USAGE_PROMETHEUS_TOKEN"],
        ca_file=current_app.config["USAGE_PROMETHEUS_CA_FILE"],
        timeout=float(current_app.config["USAGE_TIMEOUT_SECONDS"]),
    )


def measure(plate: str, cluster: str) -> Measured | Unmeasured:
    """Read the product's usage from its cluster's Prometheus, now (no cache)."""
    source = source_for(cluster)
    if source is None:
        return Unmeasured(cluster, f"no Prometheus is set for the {cluster} cluster")
    window = int(current_app.config["USAGE_WINDOW_DAYS"])
    values: dict[str, dict[str, dict[str, float]]] = {}
    asked = queries(plate, window)
    try:
        # At once: Prometheus evaluates them in parallel, and the page waits for the slowest
        # (about 25 ms over two weeks) instead of their sum (about 120 ms).
        with ThreadPoolExecutor(max_workers=len(asked)) as pool:
            answers = list(pool.map(source.query, asked.values()))
    except Unavailable as exc:
        return Unmeasured(cluster, str(exc))
    for (resource, figure), answer in zip(asked, answers, strict=True):
        for labels, value in answer:
            env = labels.get("namespace", "").removeprefix(f"{plate}-")
            scale = 1 if resource == "cpu" else GIB
            values.setdefault(env, {}).setdefault(resource, {})[figure] = value / scale
    namespaces = {
        env: {resource: Figures(**figures) for resource, figures in values[env].items()}
        for env in ENVIRONMENTS
        if env in values
    }
    return Measured(cluster, window, utcnow().isoformat(timespec="seconds"), namespaces)


_lock = threading.Lock()


def is_on() -> bool:
    """Whether any cluster's Prometheus is set: without one, pages show no usage at all."""
    return bool(current_app.config["USAGE_PROMETHEUS_URLS"])


def kept(key: tuple, read):
    """``read()``, kept for ``USAGE_CACHE_SECONDS`` in this process under ``key`` (what could not
    be read too: a Prometheus that does not answer is not asked again on every page)."""
    store = current_app.extensions.setdefault("usage.kept", {})
    now = time.monotonic()
    with _lock:
        hit = store.get(key)
    if hit is not None and now - hit[0] < current_app.config["USAGE_CACHE_SECONDS"]:
        return hit[1]
    found = read()
    with _lock:
        if len(store) > 10_000:
            store.clear()
        store[key] = (now, found)
    return found


def usage_of(plate: str, cluster: str) -> Measured | Unmeasured:
    """:func:`measure`, kept for ``USAGE_CACHE_SECONDS`` in this process."""
    url = current_app.config["USAGE_PROMETHEUS_URLS"].get(cluster)
    return kept(("usage", plate, cluster, url), lambda: measure(plate, cluster))


@dataclass(frozen=True)
class Row:
    """One resource of one namespace on the product page: its quota and what it uses."""

    namespace: str
    resource: str
    label: str
    unit: str
    requested: float
    figures: Figures

    @property
    def average_share(self) -> float | None:
        if self.figures.average is None or not self.requested:
            return None
        return self.figures.average / self.requested

    @property
    def peak_share(self) -> float | None:
        if self.figures.peak is None or not self.requested:
            return None
        return self.figures.peak / self.requested


RESOURCES = (("cpu", "CPU", "cores"), ("memory", "Memory", "GiB"), ("storage", "Storage", "GiB"))


def rows(namespaces, measured: Measured) -> list[Row]:
    """``namespaces``: the product's live namespaces (environment, name, quota options)."""
    found = []
    for ns in namespaces:
        for resource, label, unit in RESOURCES:
            requested = quotas.size(getattr(ns, resource))[0]
            figures = measured.of(ns.environment, resource)
            found.append(Row(ns.name, resource, label, unit, requested, figures))
    return found


@dataclass(frozen=True)
class Running:
    """What still runs in each namespace of a product (kube-state-metrics): pods and volume
    claims, by environment; shown before a deletion is sent and to its reviewer."""

    cluster: str
    pods: dict[str, int]
    claims: dict[str, int]
    available: bool = True
    reason: str = ""

    @property
    def anything(self) -> bool:
        return any(self.pods.values()) or any(self.claims.values())


PODS = 'count by (namespace) (kube_pod_info{{namespace=~"{ns}"}})'
CLAIMS = 'count by (namespace) (kube_persistentvolumeclaim_info{{namespace=~"{ns}"}})'


def running(plate: str, cluster: str) -> Running | Unmeasured | None:
    """Pods and volume claims in the product's namespaces (kept like usage: the review queue
    asks for every deletion it shows); None when usage is off."""
    if not is_on():
        return None
    url = current_app.config["USAGE_PROMETHEUS_URLS"].get(cluster)
    return kept(("running", plate, cluster, url), lambda: _read_running(plate, cluster))


def _read_running(plate: str, cluster: str) -> Running | Unmeasured:
    source = source_for(cluster)
    if source is None:
        return Unmeasured(cluster, f"no Prometheus is set for the {cluster} cluster")
    ns = f"{plate}-({'|'.join(ENVIRONMENTS)})"
    counts = []
    try:
        for promql in (PODS, CLAIMS):
            found = dict.fromkeys(ENVIRONMENTS, 0)
            for labels, value in source.query(promql.format(ns=ns)):
                env = labels.get("namespace", "").removeprefix(f"{plate}-")
                if env in found:
                    found[env] = int(value)
            counts.append(found)
    except Unavailable as exc:
        return Unmeasured(cluster, str(exc))
    return Running(cluster, counts[0], counts[1])
