"""Inbound: what the provisioner's status reports do, and a super admin's re-send.

Every status change goes through ``requests.lifecycle.transition``; this module decides which
one a report calls for, and refuses to move a request backwards or apply a report twice.
"""

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import contains_eager, joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from .. import contract
from ..audit import services as audit
from ..extensions import db
from ..products.models import Product
from ..requests.lifecycle import IN_FLIGHT, transition
from ..requests.models import Request, RequestStatus
from ..timeutil import utcnow


class Unprocessable(Exception):
    """A report that cannot be applied: it goes to the dead-letter table with this reason."""


class NotAwaiting(Unprocessable):
    """The plate exists but has no request waiting for the provisioner."""


class StepGap(Exception):
    """A step arrived before an earlier one of the same attempt: wait for that one first."""


@dataclass(frozen=True)
class Outcome:
    applied: bool
    request_id: int
    status: str
    detail: str = ""


def _lock_request(request_id: int) -> Request | None:
    # Only what every report needs; the contacts and the requester load only for the reports
    # that send email (provisioned, failed). The bridge's rate depends on it.
    return db.session.scalar(
        select(Request)
        .where(Request.id == request_id)
        .options(selectinload(Request.targets))
        .with_for_update(of=Request)
        .execution_options(populate_existing=True)
    )


def _locking(query):
    return (
        query.join(Request.product)
        .options(contains_eager(Request.product), joinedload(Request.targets))
        .with_for_update(of=Request)
    )


def lock_for_reports(reports: list[contract.StatusReport]) -> dict[int, Request]:
    """Lock every request a batch of reports names, in one statement and in id order (so two
    bridges take their locks in the same order and cannot deadlock)."""
    ids = sorted({r.request_id for r in reports})
    requests = db.session.scalars(
        _locking(select(Request))
        .where(Request.id.in_(ids))
        .order_by(Request.id)
        # The emails of a batch's last steps need the team: one query for the batch, not a
        # lazy load (and an autoflush) per email.
        .options(
            selectinload(Request.product, Product.contacts),
            selectinload(Request.requested_by),
        )
    ).unique()
    return {r.id: r for r in requests}


def apply_report(
    report: contract.StatusReport,
    locked: dict[int, Request] | None = None,
    wait_for_gaps: bool = False,
) -> Outcome:
    """Apply one status report from the provisioner. The caller flushes and commits.

    Idempotent: a step already passed (a repeat, a late or out-of-order report) changes nothing,
    and a request never moves backwards. Raises :class:`Unprocessable` for a report that names
    no request of ours, or one that is not waiting for the provisioner; it raises before it
    changes anything. ``locked``: the requests :func:`lock_for_reports` already holds.
    ``wait_for_gaps``: raise :class:`StepGap`, changing nothing, for a step that skips one not
    yet reported, so that the earlier one (in flight elsewhere) is not lost from the timeline.
    """
    if locked is not None:
        request = locked.get(report.request_id)
    else:
        request = (
            db.session.scalars(_locking(select(Request)).where(Request.id == report.request_id))
            .unique()
            .one_or_none()
        )
    if request is None or request.product.licence_plate != report.licence_plate:
        if not db.session.scalar(
            select(Product.id).where(Product.licence_plate == report.licence_plate)
        ):
            raise Unprocessable("unknown licence plate: no product has it")
        raise Unprocessable("the workflow names no request of the product")
    target = next((t for t in request.targets if t.cluster == report.cluster), None)
    if target is None:
        raise NotAwaiting(
            f"request {request.id} has no provisioning on the reported cluster"
            f" (status {request.status})"
        )
    status = RequestStatus(request.status)
    if status not in IN_FLIGHT:
        if status in (RequestStatus.PROVISIONED, RequestStatus.FAILED):
            # A repeat or a straggler of a request that has already ended or stopped.
            return Outcome(False, request.id, request.status, "request no longer in flight")
        raise NotAwaiting(f"request {request.id} is {request.status}, not awaiting provisioning")

    if report.status == contract.FAILED:
        if target.is_provisioned:
            return Outcome(False, request.id, request.status, "cluster already provisioned")
        target.failed_reason = report.message or "The provisioner reported a failure."
        target.updated_at = utcnow()
        transition(
            request,
            RequestStatus.FAILED,
            None,
            note=target.failed_reason,
            step=target.step,
            cluster=report.cluster,
            reported_at=report.occurred_at,
        )
        return Outcome(True, request.id, request.status)

    index = contract.STEPS.index(report.status)
    if index <= target.step_index:
        return Outcome(False, request.id, request.status, "step already passed")
    if wait_for_gaps and index > target.step_index + 1:
        raise StepGap(report.status)
    target.step = report.status
    target.updated_at = utcnow()
    if target.is_provisioned:
        waiting = [t.cluster for t in request.targets if not t.is_provisioned]
        to = RequestStatus.PARTIALLY_PROVISIONED if waiting else RequestStatus.PROVISIONED
        note = report.message or (
            f"Provisioned on {report.cluster}; waiting on {', '.join(waiting)}."
            if waiting
            else f"Provisioned on {report.cluster}."
        )
    else:
        to = (
            RequestStatus.PROVISIONING
            if status == RequestStatus.APPROVED
            else RequestStatus(request.status)
        )
        note = report.message or None
    transition(
        request,
        to,
        None,
        note=note,
        step=report.status,
        cluster=report.cluster,
        reported_at=report.occurred_at,
    )
    return Outcome(True, request.id, request.status)


def provisioned_by_callback(licence_plate: str, cluster: str) -> Outcome:
    """The HTTP callback: the same as a ``provisioned`` report for the plate's active request."""
    product = db.session.scalar(select(Product).where(Product.licence_plate == licence_plate))
    if product is None:
        raise Unprocessable("unknown licence plate: no product has it")
    request = db.session.scalar(
        select(Request)
        .where(Request.product_id == product.id)
        .order_by(Request.created_at.desc(), Request.id.desc())
        .limit(1)
    )
    if request is None:
        raise NotAwaiting("the product has no request")
    if request.status == RequestStatus.FAILED:
        # Saying 204 here would tell the pipeline all is well while the request stays failed.
        raise NotAwaiting(
            f"request {request.id} failed; a super admin must re-send it before it can complete"
        )
    report = contract.StatusReport(
        licence_plate=licence_plate,
        cluster=cluster,
        status="provisioned",
        workflow=contract.workflow_name(cluster, licence_plate, request.id),
        message="Reported provisioned over HTTP.",
        occurred_at=utcnow(),
    )
    return apply_report(report)


def resend(request_id: int, actor) -> Request:
    """A super admin sends a failed or stuck request to the provisioner again: a new attempt."""
    request = _lock_request(request_id)
    if request is None:
        raise LookupError(request_id)
    if not actor.is_super_admin:
        raise PermissionError("Only super admins re-send requests.")
    status = RequestStatus(request.status)
    if status not in (*IN_FLIGHT, RequestStatus.FAILED):
        raise ValueError(f"A {status.label.lower()} request cannot be re-sent.")
    request.attempt += 1
    transition(
        request,
        RequestStatus.APPROVED,
        actor,
        note=f"Re-sent to the provisioner: attempt {request.attempt}.",
    )
    try:
        db.session.flush()
    except StaleDataError as exc:
        raise ValueError("The request changed meanwhile; look at it again.") from exc
    audit.record(
        "resend",
        target=f"request #{request.id}",
        detail=f"{request.product.name} ({request.product.licence_plate}) was"
        f" {status.label.lower()}; attempt {request.attempt}.",
        actor=actor,
    )
    return request
