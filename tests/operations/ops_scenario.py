"""A known week for the operations page: built through the lifecycle services, then moved back
in time to last week (Wednesday on), so its numbers do not depend on when the tests run.

Last week: 3 requests approved and provisioned (decided after 2, 4 and 6 hours; provisioned 10,
20 and 30 minutes after approval), 1 rejected after 1 hour, 1 approved after 3 hours that failed
at "manifests_committed". Today: 2 pending, one 30 minutes old, one 3 days old.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from registry import contract
from registry.extensions import db
from registry.operations.queries import week_start
from registry.requests import services
from registry.requests.models import Request, RequestEvent
from registry.timeutil import utcnow
from tests import builders
from tests.builders import report

HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)


def retime(request_id: int, created: datetime, decided: datetime | None, finished: datetime):
    """Put a request's times, and its timeline's, where the scenario wants them: the first event
    at ``created``, the second (the decision) at ``decided``, the rest spread evenly up to
    ``finished``."""
    req = db.session.get(Request, request_id)
    events = list(
        db.session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id)
        )
    )
    req.created_at, req.updated_at = created, finished
    if decided is not None:
        req.decided_at = decided
    events[0].created_at = created
    if len(events) > 1:
        events[1].created_at = decided
        rest = events[2:]
        for k, event in enumerate(rest):
            event.created_at = decided + (finished - decided) * (k + 1) / len(rest)
    db.session.commit()


@dataclass
class Scenario:
    provisioned: list[int]
    rejected: int
    failed: int
    pending_new: int
    pending_old: int


def build(owner, admin, now: datetime | None = None) -> Scenario:
    now = now or utcnow()
    base = week_start(now) - timedelta(days=5)  # last week's Wednesday, 00:00 UTC
    provisioned = []
    for n, (decision_hours, provision_minutes) in enumerate(((2, 10), (4, 20), (6, 30))):
        req = builders.submit(owner, name=f"Provisioned {n + 1}")
        services.decide(req.id, admin, approve=True)
        db.session.commit()
        for step in contract.STEPS:
            report(req, step)
        created = base + timedelta(hours=10 * n)
        decided = created + decision_hours * HOUR
        retime(req.id, created, decided, decided + provision_minutes * MINUTE)
        provisioned.append(req.id)

    rejected = builders.submit(owner, name="Rejected one")
    services.decide(rejected.id, admin, approve=False, comment="Use the existing product.")
    db.session.commit()
    created = base + timedelta(hours=40)
    retime(rejected.id, created, created + HOUR, created + HOUR)

    failed = builders.submit(owner, name="Broken one")
    services.decide(failed.id, admin, approve=True)
    db.session.commit()
    report(failed, "workflow_started")
    report(failed, "acs_account_created")
    report(failed, "failed", "the GitOps repository refused the push")
    created = base + timedelta(hours=50)
    retime(failed.id, created, created + 3 * HOUR, created + 3 * HOUR + 5 * MINUTE)

    pending_new = builders.submit(owner, name="Waiting a little")
    retime(pending_new.id, now - 30 * MINUTE, None, now - 30 * MINUTE)
    pending_old = builders.submit(owner, name="Waiting too long")
    retime(pending_old.id, now - timedelta(days=3), None, now - timedelta(days=3))
    return Scenario(provisioned, rejected.id, failed.id, pending_new.id, pending_old.id)


def history(owner, admin, now: datetime | None = None, weeks: int = 9) -> None:
    """Earlier weeks, for a page that looks lived in: a few provisioned requests a week, the
    decisions getting faster, one failure now and then. Weeks 2 to ``weeks`` + 1 back."""
    now = now or utcnow()
    for back in range(2, weeks + 2):
        base = week_start(now) - timedelta(weeks=back) + timedelta(days=1)
        for n in range(2 + back % 3):
            req = builders.submit(owner, name=f"Earlier {back}-{n}")
            services.decide(req.id, admin, approve=True)
            db.session.commit()
            steps = contract.STEPS if (back + n) % 5 else contract.STEPS[:3]
            for step in steps:
                report(req, step)
            if steps != contract.STEPS:
                report(req, "failed", "Vault did not answer")
            created = base + timedelta(hours=7 * n)
            decided = created + timedelta(hours=back * 1.5 + n)
            retime(req.id, created, decided, decided + (15 + 3 * back + 5 * n) * MINUTE)


def silent_in_flight(owner, admin, minutes: int = 42) -> Request:
    """A request the provisioner went quiet on after manifests_committed."""
    req = builders.submit(owner, name="Quiet pipeline")
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    for step in contract.STEPS[:3]:
        report(req, step)
    now = utcnow()
    retime(req.id, now - 2 * HOUR, now - HOUR, now - minutes * MINUTE)
    return req
