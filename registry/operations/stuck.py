"""Stuck requests: found, explained, and told to the super admins once per threshold crossed.

A request is stuck when it has waited for a decision longer than ``STUCK_PENDING_HOURS``, or
is in flight (approved, provisioning, partially provisioned) with no report from the
provisioner for longer than ``STUCK_SILENT_MINUTES``. The check runs in every process that runs
the background work (:class:`StuckChecker`); the unique ``(request_id, key)`` of
``stuck_reminders`` lets exactly one of them send each reminder: the row, the timeline entry and
the email are one transaction, and a process that meets the unique violation knows another did
it. The key is "decision", or "silent:<id of the last transition>", so a request that moves on
and stalls again is told of again.
"""

import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flask import current_app, url_for
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import joinedload, selectinload

from ..auth import services as accounts
from ..contract import STEP_LABELS
from ..extensions import db
from ..notifications import services as notifications
from ..outbox import backlog
from ..products.models import Product
from ..requests import lifecycle
from ..requests.models import IN_FLIGHT_STATUSES, Request, RequestEvent, RequestStatus
from ..timeutil import utcnow
from .models import StuckReminder

log = logging.getLogger(__name__)

DECISION = "decision"
SILENT = "silent"

# Where the runbook explains each reason (the headings of runbook.md, beside this module).
RUNBOOK_ANCHORS = {
    DECISION: "waiting-for-a-decision",
    SILENT: "no-report-from-the-provisioner",
    "unsent": "not-yet-sent-to-the-provisioner",
}


def duration_words(delta: timedelta) -> str:
    """'42 minutes', '5 hours', '3 days': whole units, as a person says it."""
    minutes = int(delta.total_seconds() // 60)
    if minutes < 120:
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours"
    return f"{hours // 24} days"


@dataclass(frozen=True)
class Stuck:
    """One stuck request, in plain values (it outlives the transaction that found it)."""

    request_id: int
    status: str
    status_label: str
    product_name: str
    licence_plate: str
    kind: str  # DECISION or SILENT
    key: str  # the StuckReminder key
    since: datetime  # when it started waiting
    reason: str
    runbook_anchor: str
    reminded_at: datetime | None = None

    @property
    def can_resend(self) -> bool:
        return self.kind == SILENT


def _limits(now: datetime) -> tuple[datetime, datetime]:
    config = current_app.config
    return (
        now - timedelta(hours=float(config["STUCK_PENDING_HOURS"])),
        now - timedelta(minutes=float(config["STUCK_SILENT_MINUTES"])),
    )


def _not_reminded(key):
    return ~exists().where(StuckReminder.request_id == Request.id, StuckReminder.key == key)


def find(now: datetime | None = None, only_new: bool = False, limit: int | None = None):
    """Stuck requests, longest waiting first. ``only_new``: those not yet reminded of."""
    now = now or utcnow()
    pending_before, silent_before = _limits(now)
    found: list[Stuck] = []

    waiting = (
        select(Request)
        .join(Request.product)
        .where(Request.status == RequestStatus.PENDING.value, Request.created_at < pending_before)
        .options(joinedload(Request.product).load_only(Product.name, Product.licence_plate))
        .order_by(Request.created_at, Request.id)
    )
    if only_new:
        waiting = waiting.where(_not_reminded(DECISION))
    if limit:
        waiting = waiting.limit(limit)
    for req in db.session.scalars(waiting):
        waited = duration_words(now - req.created_at)
        found.append(
            _stuck(req, DECISION, DECISION, req.created_at, f"waiting for a decision for {waited}")
        )

    # In flight: few at any time. Their last transition (a comment, a dead letter or a reminder
    # on the timeline is no report) says since when the provisioner has been silent.
    in_flight = [s.value for s in IN_FLIGHT_STATUSES]
    last = (
        select(RequestEvent.request_id, func.max(RequestEvent.id).label("event_id"))
        .join(Request, Request.id == RequestEvent.request_id)
        .where(Request.status.in_(in_flight), RequestEvent.kind == "transition")
        .group_by(RequestEvent.request_id)
        .subquery()
    )
    rows = db.session.execute(
        select(Request, RequestEvent)
        .join(last, last.c.request_id == Request.id)
        .join(RequestEvent, RequestEvent.id == last.c.event_id)
        .where(RequestEvent.created_at < silent_before)
        .options(
            joinedload(Request.product).load_only(Product.name, Product.licence_plate),
            selectinload(Request.targets),
        )
        .order_by(RequestEvent.created_at, Request.id)
    ).all()
    for req, event in rows:
        key = f"{SILENT}:{event.id}"
        if only_new and db.session.scalar(
            select(StuckReminder.id).where(
                StuckReminder.request_id == req.id, StuckReminder.key == key
            )
        ):
            continue
        found.append(_silent(req, event, key, now))
    found.sort(key=lambda s: s.since)
    if not only_new and found:
        reminded = {
            (request_id, key): at
            for request_id, key, at in db.session.execute(
                select(StuckReminder.request_id, StuckReminder.key, StuckReminder.created_at).where(
                    StuckReminder.request_id.in_([s.request_id for s in found])
                )
            )
        }
        found = [replace(s, reminded_at=reminded.get((s.request_id, s.key))) for s in found]
    return found[:limit] if limit else found


def _stuck(req: Request, kind: str, key: str, since: datetime, reason: str, anchor=None) -> Stuck:
    return Stuck(
        request_id=req.id,
        status=req.status,
        status_label=req.status_label,
        product_name=req.product.name,
        licence_plate=req.product.licence_plate,
        kind=kind,
        key=key,
        since=since,
        reason=reason,
        runbook_anchor=RUNBOOK_ANCHORS[anchor or kind],
    )


def _silent(req: Request, event: RequestEvent, key: str, now: datetime) -> Stuck:
    silent = duration_words(now - event.created_at)
    # Nothing reported since the approval (or re-send): did its message even reach NATS?
    unsent = not event.step and backlog.unsent_messages(req.id)[0]
    if unsent:
        reason = (
            f"not yet sent to the provisioner: {unsent} message{'s' if unsent != 1 else ''}"
            f" waiting in the outbox for {silent} (is NATS reachable?)"
        )
        return _stuck(req, SILENT, key, event.created_at, reason, anchor="unsent")
    if event.step:
        after = f"{event.step} on {event.cluster}" if event.cluster else event.step
    elif event.to_status == RequestStatus.APPROVED.value and req.attempt > 1:
        after = f"it was re-sent (attempt {req.attempt})"
    elif event.to_status == RequestStatus.APPROVED.value:
        after = "it was approved"
    else:
        after = f"it became {event.to_label.lower()}"
    reason = f"no report from the provisioner for {silent} after {after}"
    behind = [
        f"{t.cluster} at {STEP_LABELS.get(t.step, 'no step yet') if t.step else 'no step yet'}"
        for t in sorted(req.targets, key=lambda t: t.cluster)
        if not t.is_provisioned and t.cluster != event.cluster
    ]
    if behind and req.status == RequestStatus.PARTIALLY_PROVISIONED.value:
        reason += f"; still waiting on {', '.join(behind)}"
    return _stuck(req, SILENT, key, event.created_at, reason)


def runbook_url(anchor: str | None = None, external: bool = False) -> str:
    """The runbook (``runbook.md`` in this package): ``RUNBOOK_URL`` when set, else the
    registry's own page of it; ``anchor``: the section."""

    base = current_app.config.get("RUNBOOK_URL")
    if not base:
        base = (
            notifications.public_url("operations.runbook")
            if external
            else url_for("operations.runbook")
        )
    return f"{base}#{anchor}" if anchor else base


def remind(now: datetime | None = None) -> int:
    """Tell the super admins of every stuck request not yet reminded of: one StuckReminder, one
    timeline entry and one email per request and threshold, in one transaction each. Returns how
    many this call sent; a reminder another process sent first is skipped."""
    now = now or utcnow()
    found = find(now, only_new=True)
    # End the reading transaction first: on SQLite a reader that then writes could meet another
    # writer in a deadlock; each reminder is a transaction of its own.
    db.session.rollback()
    sent = 0
    for stuck in found:
        try:
            if _remind_one(stuck, now):
                sent += 1
        except IntegrityError:
            db.session.rollback()  # another process sent this one: nothing to do
        except OperationalError as exc:  # SQLite busy: the next check tries again
            db.session.rollback()
            log.info("Stuck reminder for request %s not written now: %s", stuck.request_id, exc)
    return sent


def _remind_one(stuck: Stuck, now: datetime) -> bool:
    db.session.add(
        StuckReminder(request_id=stuck.request_id, key=stuck.key, reason=stuck.reason[:500])
    )
    db.session.flush()  # the unique key: waits for, then loses to, a process that got here first
    req = db.session.get(Request, stuck.request_id, populate_existing=True)
    if req is None or req.status != stuck.status or not _still(stuck, req):
        db.session.rollback()  # it moved on meanwhile
        return False
    lifecycle.note(req, "reminder", f"Super admins reminded: {stuck.reason}.", at=now)
    anchor = stuck.runbook_anchor
    notifications.enqueue(
        "stuck",
        accounts.super_admin_emails(),
        req,
        reason=stuck.reason,
        stuck_kind=stuck.kind,
        operations_url=notifications.public_url("operations.page"),
        queue_url=notifications.public_url("review.queue"),
        dead_letters_url=notifications.public_url("provisioning.dead_letters"),
        runbook_url=runbook_url(anchor, external=True),
    )
    db.session.commit()
    log.info("Reminded the super admins of request %s: %s", req.id, stuck.reason)
    return True


def _still(stuck: Stuck, req: Request) -> bool:
    """Is the request still stuck the same way (no report came since it was found)?"""
    if stuck.kind == DECISION:
        return True
    last = db.session.scalar(
        select(func.max(RequestEvent.id)).where(
            RequestEvent.request_id == req.id, RequestEvent.kind == "transition"
        )
    )
    return stuck.key == f"{SILENT}:{last}"


class StuckChecker(threading.Thread):
    """Runs :func:`remind` every ``STUCK_CHECK_SECONDS``, in every process that runs the
    background work; the unique key keeps their reminders to one."""

    def __init__(self, app):
        super().__init__(name="stuck-checker", daemon=True)
        self.app = app
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with self.app.app_context():
                    remind()
            except Exception:
                log.exception("Stuck-request check failed")
            self.stopping.wait(float(self.app.config["STUCK_CHECK_SECONDS"]))

    def stop(self) -> None:
        self.stopping.set()


@dataclass(frozen=True)
class Attention:
    """A request that needs a super admin besides a decision: it failed, or it is in flight
    and the provisioner has been silent too long. Shown atop the review queue."""

    request_id: int
    product_name: str
    licence_plate: str
    status_label: str
    reason: str
    since: datetime
    can_resend: bool = True


def attention(limit: int = 50) -> list[Attention]:
    """Failed requests (their latest failure first) and those stuck with the provisioner,
    oldest first after them; at most ``limit``."""
    failed = db.session.execute(
        select(Request, func.max(RequestEvent.created_at))
        .join(RequestEvent, RequestEvent.request_id == Request.id)
        .where(
            Request.status == RequestStatus.FAILED.value,
            RequestEvent.to_status == RequestStatus.FAILED.value,
        )
        .group_by(Request.id)
        .options(joinedload(Request.product).load_only(Product.name, Product.licence_plate))
        .order_by(func.max(RequestEvent.created_at).desc())
        .limit(limit)
    ).all()
    found = [
        Attention(
            req.id,
            req.product.name,
            req.product.licence_plate,
            req.status_label,
            "failed at the provisioner; fix the cause, then re-send",
            at,
        )
        for req, at in failed
    ]
    silent = [s for s in find() if s.kind == SILENT][: max(0, limit - len(found))]
    found += [
        Attention(s.request_id, s.product_name, s.licence_plate, s.status_label, s.reason, s.since)
        for s in silent
    ]
    return found
