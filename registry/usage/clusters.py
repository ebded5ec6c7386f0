"""A cluster's headroom: what its nodes can give (``kube_node_status_allocatable`` from
kube-state-metrics, in its Prometheus) less the quotas the registry has already given on it (the
live namespaces of every product there, from the database). Kept per process for
``USAGE_CACHE_SECONDS``; never raises."""

from dataclasses import dataclass

from flask import current_app
from sqlalchemy import func, select

from ..extensions import db
from ..products.models import Product, ProductNamespace, ProductStatus
from ..reference import quotas
from .namespaces import GIB, is_on, kept, source_for
from .prometheus import Unavailable

# Products whose namespaces hold their quotas on the cluster (being created counts: approved).
HOLDING = [s.value for s in ProductStatus if s not in (
    ProductStatus.REQUESTED, ProductStatus.NOT_CREATED, ProductStatus.DELETED)]  # fmt: skip
ALLOCATABLE = 'sum(kube_node_status_allocatable{{resource="{resource}"}})'


@dataclass(frozen=True)
class Headroom:
    cluster: str
    available: bool
    reason: str = ""
    cpu_allocatable: float = 0.0  # cores
    cpu_given: float = 0.0
    memory_allocatable: float = 0.0  # GiB
    memory_given: float = 0.0

    @property
    def cpu_free(self) -> float:
        return self.cpu_allocatable - self.cpu_given

    @property
    def memory_free(self) -> float:
        return self.memory_allocatable - self.memory_given


def given(cluster: str) -> tuple[float, float]:
    """CPU cores and memory GiB requested by the live namespaces of the products on ``cluster``:
    one grouped statement per resource, the options sized here."""
    totals = []
    for column in (ProductNamespace.cpu, ProductNamespace.memory):
        rows = db.session.execute(
            select(column, func.count())
            .join(Product, Product.id == ProductNamespace.product_id)
            .where(Product.cluster_name == cluster, Product.status.in_(HOLDING))
            .group_by(column)
        ).all()
        totals.append(sum(quotas.size(option)[0] * count for option, count in rows))
    return totals[0], totals[1]


def measure(cluster: str) -> Headroom:
    source = source_for(cluster)
    if source is None:
        return Headroom(cluster, False, f"no Prometheus is set for the {cluster} cluster")
    try:
        found = {}
        for resource in ("cpu", "memory"):
            series = source.query(ALLOCATABLE.format(resource=resource))
            if not series:
                return Headroom(cluster, False, "no kube_node_status_allocatable in Prometheus")
            found[resource] = series[0][1]
    except Unavailable as exc:
        return Headroom(cluster, False, str(exc))
    cpu_given, memory_given = given(cluster)
    return Headroom(cluster, True, "", found["cpu"], cpu_given, found["memory"] / GIB, memory_given)


def headroom(cluster: str) -> Headroom | None:
    """:func:`measure`, kept for ``USAGE_CACHE_SECONDS`` in this process; None when usage is
    off."""
    if not is_on():
        return None
    url = current_app.config["USAGE_PROMETHEUS_URLS"].get(cluster)
    return kept(("headroom", cluster, url), lambda: measure(cluster))
