"""Gauges read from the database when Prometheus scrapes: state, not events, so every process
(and every pod) reports the same numbers; aggregate them with ``max``, never ``sum``.

Four statements, each a grouped count or an aggregate over an index (see docs/operations.md,
"Metrics", for their plans at 100,000 products). A database that does not answer makes
``registry_database_up 0`` and no other gauge of this module, never a failed scrape.
"""

import contextlib
import logging
import time

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select, text

from ..extensions import db
from ..outbox import backlog as outbox_backlog
from ..requests.models import Request, RequestStatus, RequestType
from ..timeutil import utcnow

log = logging.getLogger(__name__)

# A scrape must not hang on a slow database: PostgreSQL stops these statements after this long.
STATEMENT_TIMEOUT_MS = 2000


def _age(now, oldest) -> float:
    return max((now - oldest).total_seconds(), 0.0) if oldest is not None else 0.0


def read_state() -> list[GaugeMetricFamily]:
    """The gauges, from one short read-only transaction (rolled back)."""
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(f"SET LOCAL statement_timeout = {STATEMENT_TIMEOUT_MS}"))
    now = utcnow()
    requests = GaugeMetricFamily(
        "registry_requests",
        "Requests by kind (create, edit, delete) and status, as the database holds them now.",
        labels=["kind", "status"],
    )
    counts = {(kind.value, status.value): 0 for kind in RequestType for status in RequestStatus}
    for kind, status, count in session.execute(
        select(Request.type, Request.status, func.count()).group_by(Request.type, Request.status)
    ):
        counts[(kind, status)] = count
    for (kind, status), count in counts.items():
        requests.add_metric([kind, status], count)

    pending_count, oldest_pending = session.execute(
        select(func.count(), func.min(Request.created_at)).where(
            Request.status == RequestStatus.PENDING.value
        )
    ).one()
    pending = GaugeMetricFamily(
        "registry_pending_requests", "Requests waiting for a super admin's decision."
    )
    pending.add_metric([], pending_count)
    pending_age = GaugeMetricFamily(
        "registry_pending_request_oldest_age_seconds",
        "How long the oldest pending request has waited since it was submitted (0: none).",
    )
    pending_age.add_metric([], _age(now, oldest_pending))

    backlog = GaugeMetricFamily(
        "registry_outbox_pending_messages",
        "Outbox rows not yet sent: mail (emails) or nats (provisioning messages).",
        labels=["outbox"],
    )
    backlog_age = GaugeMetricFamily(
        "registry_outbox_oldest_pending_age_seconds",
        "How long the oldest unsent outbox row has waited since it was written (0: none).",
        labels=["outbox"],
    )
    for name in outbox_backlog.OUTBOXES:
        count, oldest = outbox_backlog.pending(name)
        backlog.add_metric([name], count)
        backlog_age.add_metric([name], _age(now, oldest))
    return [requests, pending, pending_age, backlog, backlog_age]


class DatabaseCollector:
    """A prometheus_client collector: reads :func:`read_state` in the current app context."""

    def collect(self):
        started = time.perf_counter()
        try:
            families = read_state()
            up = 1
        except Exception as exc:  # any failure: say the database is down, keep the scrape
            families, up = [], 0
            log.warning("Metrics: the database did not answer: %s", str(exc).splitlines()[0][:200])
        finally:
            with contextlib.suppress(Exception):  # a dead connection: nothing to roll back
                db.session.rollback()
        yield from families
        database_up = GaugeMetricFamily(
            "registry_database_up", "1 if the database answered this scrape's queries, else 0."
        )
        database_up.add_metric([], up)
        yield database_up
        duration = GaugeMetricFamily(
            "registry_database_scrape_duration_seconds",
            "How long this scrape's database queries took.",
        )
        duration.add_metric([], time.perf_counter() - started)
        yield duration
