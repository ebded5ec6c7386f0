"""The cost report: what the quotas of each ministry's products cost, month by month, at
``COST_PER_MONTH``. Read from the requests' own history: each provisioned create or change
starts a span in which the product held its granted quotas (under the ministry the request
names), and a provisioned deletion ends it; a month is charged for the days of each span within
it. The current month is charged to today.

Reading every provisioned request is the cost of the report, so each process keeps the result
until another request is provisioned: the key is the newest provisioned event's id, read in
one indexed statement, so a change anywhere is seen on the next page view.
"""

import threading
from calendar import monthrange
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from ..extensions import db
from ..products.models import Product
from ..reference import quotas
from ..reference import services as reference
from ..requests.models import Request, RequestEvent, RequestStatus, RequestType
from ..timeutil import utcnow

MONTHS = 12


@dataclass
class Report:
    months: list[str]  # "2026-12", oldest first
    current: str  # the month charged to today
    currency: str
    # ministry code -> month -> cost
    rows: dict[str, dict[str, float]] = field(default_factory=dict)
    # ministry code -> month -> products that held quotas in it
    products: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def totals(self) -> dict[str, float]:
        return {m: sum(r.get(m, 0.0) for r in self.rows.values()) for m in self.months}

    def total_of(self, ministry: str) -> float:
        return sum(self.rows[ministry].values())


def _months(now: datetime, count: int) -> list[tuple[str, datetime, datetime]]:
    """(label, start, end) of the last ``count`` months, oldest first; the last ends now."""
    first = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    found = []
    for _ in range(count):
        end = min(now, first + timedelta(days=monthrange(first.year, first.month)[1]))
        found.append((f"{first:%Y-%m}", first, end))
        first = (first - timedelta(days=1)).replace(day=1)
    return list(reversed(found))


def _spans(until: datetime):
    """(product id, ministry, namespaces, start, end) for every span a product held quotas."""
    provisioned = (
        select(RequestEvent.request_id, func.max(RequestEvent.created_at).label("at"))
        .where(
            RequestEvent.kind == "transition",
            RequestEvent.to_status == RequestStatus.PROVISIONED.value,
        )
        .group_by(RequestEvent.request_id)
        .subquery()
    )
    rows = db.session.execute(
        select(
            Request.product_id,
            Request.type,
            Request.decision_data,
            Request.requested_data,
            Product.ministry_code,
            provisioned.c.at,
        )
        .join(provisioned, provisioned.c.request_id == Request.id)
        .join(Product, Product.id == Request.product_id)
        .order_by(Request.product_id, provisioned.c.at, Request.id)
    )
    held: dict[int, tuple[str, dict, datetime]] = {}
    for product_id, kind, decided, requested, ministry, at in rows:
        earlier = held.pop(product_id, None)
        if earlier is not None:
            yield (product_id, *earlier, at)
        if kind != RequestType.DELETE:
            granted = decided or requested
            held[product_id] = (granted.get("ministry") or ministry, granted["namespaces"], at)
    for product_id, (ministry, namespaces, start) in held.items():
        yield product_id, ministry, namespaces, start, until


def build(now: datetime | None = None) -> Report:
    now = now or utcnow()
    config = current_app.config
    prices = config["COST_PER_MONTH"] or {}
    months = _months(now, MONTHS)
    report = Report([m for m, _, _ in months], months[-1][0], config["COST_CURRENCY"])
    first = months[0][1]
    seen: dict[tuple[str, str], set[int]] = {}
    for product_id, ministry, namespaces, start, end in _spans(now):
        if end <= first:
            continue
        monthly = quotas.monthly_cost(namespaces, prices)
        for label, m_start, m_end in months:
            overlap = (min(end, m_end) - max(start, m_start)).total_seconds()
            if overlap <= 0:
                continue
            days = monthrange(m_start.year, m_start.month)[1]
            charged = monthly * overlap / (days * 86400)
            report.rows.setdefault(ministry, {}).setdefault(label, 0.0)
            report.rows[ministry][label] += charged
            seen.setdefault((ministry, label), set()).add(product_id)
    for (ministry, label), ids in seen.items():
        report.products.setdefault(ministry, {})[label] = len(ids)
    report.rows = dict(sorted(report.rows.items()))
    return report


_lock = threading.Lock()


def _version() -> tuple:
    """What the report depends on, in one indexed read: the newest provisioned request."""
    newest = db.session.scalar(
        select(func.max(RequestEvent.id)).where(
            RequestEvent.to_status == RequestStatus.PROVISIONED.value
        )
    )
    config = current_app.config
    prices = tuple(sorted((config["COST_PER_MONTH"] or {}).items()))
    return newest, prices, utcnow().date()


def report() -> Report:
    """The report, from this process's copy while no request was provisioned since (and the
    day and prices are the same)."""
    version = _version()
    store = current_app.extensions.setdefault("capacity.cost_report", {})
    with _lock:
        kept = store.get("report")
    if kept is not None and kept[0] == version:
        return kept[1]
    built = build()
    with _lock:
        store["report"] = (version, built)
    return built


def ministry_names() -> dict[str, str]:
    return reference.names()[1]
