"""Provisioning: the messages an approval sends, and what the provisioner's reports do.

Every status change goes through ``requests.lifecycle.transition``; this module decides which
one a report calls for, and refuses to move a request backwards or apply a report twice.
"""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import contains_eager, joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from .. import contract, outbox
from ..audit import services as audit
from ..extensions import db
from ..inputs import BadJSON, parse_json
from ..products.models import Product
from ..reference.models import Cluster, Ministry, QuotaOption
from ..requests import changes
from ..requests.lifecycle import IN_FLIGHT, transition
from ..requests.models import Request, RequestEvent, RequestStatus
from ..timeutil import utcnow
from .models import DeadLetter, OutboxMessage, ProvisioningTarget, ServiceAccount

# The session flag that wakes the relay after a commit that wrote provisioning messages.
OUTBOX_FLAG = "provisioning_outbox_written"


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


def target_clusters(cluster: Cluster) -> list[str]:
    """The clusters a product on ``cluster`` is built on: gold also on golddr."""
    return [cluster.name] + ([cluster.paired_with] if cluster.paired_with else [])


def request_moved(request: Request, event) -> None:
    """Listens to the lifecycle's ``request_moved``: an approval (or a re-send) publishes."""
    if event.to_status == RequestStatus.APPROVED:
        _send(request)


def _send(request: Request) -> None:
    product = request.product
    data = request.granted_data
    cluster = db.session.get(Cluster, product.cluster_name)
    ministry = db.session.get(Ministry, data["ministry"])
    targets = {t.cluster: t for t in request.targets}
    for name in target_clusters(cluster):
        target = targets.get(name)
        if target is None:
            target = ProvisioningTarget(
                request=request,
                cluster=name,
                workflow=contract.workflow_name(name, product.licence_plate, request.id),
                attempt=request.attempt,
            )
            db.session.add(target)
        elif target.is_provisioned:
            continue  # a re-send only repeats what is not done
        else:
            target.attempt, target.step, target.failed_reason = request.attempt, None, None
            target.updated_at = utcnow()
        message = contract.provisioning_message(
            action=request.type,
            product_id=product.id,
            licence_plate=product.licence_plate,
            request_id=request.id,
            cluster_name=name,
            cluster_id=db.session.get(Cluster, name).number,
            data=data,
            alliance=ministry.alliance,
            quota_numbers=_quota_numbers(data),
            contact_changed=changes.contacts_changed(request.original_data, data),
        )
        db.session.add(
            OutboxMessage(
                request_id=request.id, subject=contract.provisioning_subject(name), payload=message
            )
        )
    outbox.written(OUTBOX_FLAG)
    db.session.flush()


def _quota_numbers(data: dict) -> dict[str, dict]:
    names = {name for quotas in data["namespaces"].values() for name in quotas.values()}
    options = db.session.scalars(select(QuotaOption).where(QuotaOption.name.in_(names)))
    return {o.name: o.quotas for o in options}


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


def dead_letter(
    source: str, data: bytes | str, reason: str, subject=None, sequence=None, delivered=None
) -> DeadLetter:
    """Keep a report that cannot be applied, with the reason, for a super admin to look at.
    When its workflow names one of our requests, the letter keeps which (its timeline then
    shows what a super admin did with it)."""
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    text = text.replace("\x00", "\\x00")  # PostgreSQL text cannot hold NUL
    letter = DeadLetter(
        source=source,
        subject=subject,
        data=text[:20000],
        reason=reason[:2000],
        stream_sequence=sequence,
        delivered=delivered,
        request_id=_named_request(text),
    )
    db.session.add(letter)
    db.session.flush()
    return letter


def _named_request(text: str) -> int | None:
    """The id of the request a report's workflow names, if it parses and the request exists."""
    try:
        body = parse_json(text)
    except BadJSON:
        return None
    workflow = body.get("workflow") if isinstance(body, dict) else None
    named = contract.parse_workflow(workflow) if isinstance(workflow, str) else None
    if named is None:
        return None
    return db.session.scalar(select(Request.id).where(Request.id == named[2]))


# What a dead-letter list shows: the open ones (nobody has replayed or discarded them), the
# resolved ones, or all.
LETTER_STATES = ("open", "resolved", "all")


def dead_letters(page: int, per_page: int, state: str = "open"):
    query = (
        select(DeadLetter)
        .options(joinedload(DeadLetter.resolved_by), joinedload(DeadLetter.request))
        .order_by(DeadLetter.id.desc())
    )
    if state == "open":
        query = query.where(DeadLetter.resolution.is_(None))
    elif state == "resolved":
        query = query.where(DeadLetter.resolution.is_not(None))
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


class LetterError(Exception):
    """A dead letter cannot be replayed or discarded; the message says why."""


class ReplayFailed(LetterError):
    """The report failed again; the letter stays open with the new reason (committed)."""


def _open_letter(letter_id: int) -> DeadLetter:
    letter = db.session.scalar(
        select(DeadLetter)
        .where(DeadLetter.id == letter_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if letter is None:
        raise LookupError(letter_id)
    if letter.resolution is not None:
        raise LetterError(f"Dead letter #{letter.id} was {letter.resolution} already.")
    return letter


def _resolve(letter: DeadLetter, resolution: str, actor, note: str) -> None:
    """Mark the letter resolved, audit it, and put it on the timeline of the request it names."""
    letter.resolution = resolution
    letter.resolved_at = utcnow()
    letter.resolved_by_id = actor.id
    letter.resolution_note = note
    request = db.session.get(Request, letter.request_id) if letter.request_id else None
    what = f"dead letter #{letter.id}"
    if request is not None:
        db.session.add(
            RequestEvent(
                request_id=request.id,
                kind="dead_letter",
                actor_id=actor.id,
                from_status=request.status,
                to_status=request.status,
                note=f"{resolution.capitalize()} {what}: {note}",
                created_at=utcnow(),
            )
        )
    audit.record(
        f"dead_letter_{resolution}",
        target=what + (f" (request #{request.id})" if request is not None else ""),
        detail=f"{note} The report: {letter.data[:500]}",
        actor=actor,
    )
    db.session.flush()


def replay_dead_letter(letter_id: int, actor) -> tuple[DeadLetter, Outcome]:
    """A super admin applies a dead letter's report again, once its cause is fixed: through
    the bridge's own steps (contract.parse_report, then apply_report), in the caller's
    transaction with the letter locked. Applied (or found already applied: a harmless repeat),
    the letter is resolved as replayed, on the request's timeline and in the audit log, all in
    that transaction. Refused again (both refuse before they write), the letter stays open with
    the new reason and :class:`ReplayFailed` says it; the caller commits either way."""
    if not actor.is_super_admin:
        raise PermissionError("Only super admins replay dead letters.")
    letter = _open_letter(letter_id)
    try:
        # Both refuse before they change anything: a refusal leaves only the new reason to write.
        report = contract.parse_report(letter.data)
        outcome = apply_report(report)
        db.session.flush()
    except (contract.InvalidReport, Unprocessable) as exc:
        letter.reason = f"Replayed {utcnow():%Y-%m-%d %H:%M} UTC, failed again: {exc}"[:2000]
        letter.delivered = (letter.delivered or 0) + 1
        db.session.flush()
        raise ReplayFailed(f"Dead letter #{letter.id} failed again: {exc}") from exc
    if letter.request_id is None:
        letter.request_id = outcome.request_id
    note = (
        f"Applied: request #{outcome.request_id} is now {outcome.status}."
        if outcome.applied
        else f"Nothing to change ({outcome.detail}): request #{outcome.request_id} is"
        f" {outcome.status}."
    )
    _resolve(letter, "replayed", actor, note)
    return letter, outcome


# A discard's reason: required, and at most this long.
NOTE_MAX = 1000


class NoteRequired(LetterError):
    """A discard without its reason (or with one too long)."""


def discard_dead_letter(letter_id: int, actor, note: str) -> DeadLetter:
    """A super admin sets a dead letter aside for good, saying why (required)."""
    if not actor.is_super_admin:
        raise PermissionError("Only super admins discard dead letters.")
    note = (note or "").strip()
    if not note:
        raise NoteRequired("Say why the report is discarded: the note is required.")
    if len(note) > NOTE_MAX:
        raise NoteRequired(f"The note is at most {NOTE_MAX:,} characters.")
    letter = _open_letter(letter_id)
    _resolve(letter, "discarded", actor, note)
    return letter


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# How long a new service account's token works unless told otherwise.
DEFAULT_TOKEN_DAYS = 365
# Ten years: a token lives no longer (and a date that far ahead is one Python can hold).
MAX_TOKEN_DAYS = 3650


class ServiceAccountError(ValueError):
    """A service account cannot be made or changed; the message says why."""


def service_accounts() -> list[ServiceAccount]:
    return list(db.session.scalars(select(ServiceAccount).order_by(ServiceAccount.name)))


def create_service_account(
    name: str, expires_in_days: int | None = DEFAULT_TOKEN_DAYS, actor=None
) -> tuple[ServiceAccount, str]:
    """A provisioner service account and its bearer token, which is shown once and kept hashed.

    ``expires_in_days``: the token is refused after that many days; 0 or None, never.
    The audit log records it, by ``actor`` (default: the signed-in user, else "cli").
    """
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ServiceAccountError("A service account needs a name of at most 80 characters.")
    if expires_in_days is not None and not 0 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise ServiceAccountError(
            f"The number of days must be from 0 (never expires) to {MAX_TOKEN_DAYS:,}."
        )
    if db.session.scalar(select(ServiceAccount.id).where(ServiceAccount.name == name)):
        raise ServiceAccountError(f"A service account named {name} exists already.")
    token = "prs_" + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    account = ServiceAccount(name=name, token_hash=hash_token(token), expires_at=expires_at)
    db.session.add(account)
    db.session.flush()
    audit.record(
        "service_account_created",
        target=f"service account {name}",
        detail=f"Expires {expires_at:%Y-%m-%d %H:%M} UTC." if expires_at else "Never expires.",
        actor=actor,
    )
    return account, token


def revoke_service_account(account: ServiceAccount, actor=None) -> ServiceAccount:
    """Turn a service account off: its token is refused from the commit on."""
    if not account.active:
        raise ServiceAccountError(f"Service account {account.name} is revoked already.")
    account.active = False
    audit.record("service_account_revoked", target=f"service account {account.name}", actor=actor)
    db.session.flush()
    return account


@dataclass(frozen=True)
class TokenCheck:
    """What a presented bearer token is: an account that may call (``reason`` None), or why not.
    ``account`` is set whenever the token is one we issued, usable or not."""

    account: ServiceAccount | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.account is not None and self.reason is None


def check_token(token: str) -> TokenCheck:
    """Look a bearer token up and note the call on its account (``last_used_at``), whether or
    not the token may still be used. The caller commits that note before doing the work, so
    a call that fails later still counts as a use."""
    if not token:
        return TokenCheck(None, "a valid provisioner bearer token is required")
    account = db.session.scalar(
        select(ServiceAccount).where(ServiceAccount.token_hash == hash_token(token))
    )
    if account is None:
        return TokenCheck(None, "a valid provisioner bearer token is required")
    now = utcnow()
    account.last_used_at = now
    if not account.active:
        return TokenCheck(account, f"the service account {account.name} was revoked")
    if account.expires_at is not None and account.expires_at <= now:
        return TokenCheck(
            account,
            f"the token of service account {account.name} expired on"
            f" {account.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    return TokenCheck(account, None)


def service_account_for(token: str) -> ServiceAccount | None:
    """The account a usable token belongs to, or None."""
    check = check_token(token)
    return check.account if check.ok else None
