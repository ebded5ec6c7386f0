"""What people do with requests: ask for a product, a change, a deletion, or a product again;
decide; cancel. All moves go through ``lifecycle``."""

import dataclasses
import math
from datetime import timedelta

from flask import current_app, g, has_request_context
from sqlalchemy import func, or_, select, union_all
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from ..audit import services as audit
from ..auth import services as accounts
from ..extensions import db
from ..products import services as product_services
from ..products.models import ContactRole, Product, ProductContactHistory, ProductStatus
from ..reference import services as reference
from ..reference.models import ENVIRONMENTS, QUOTA_KINDS
from ..timeutil import age, utcnow
from ..usage import namespaces as usage
from ..usage import rules as usage_rules
from . import changes, temporary
from .lifecycle import note, transition
from .models import ACTIVE_STATUSES, Request, RequestEvent, RequestStatus, RequestType


class RequestError(Exception):
    """A request could not be acted on; the message is shown to the user as it is."""


class AlreadyDecided(RequestError):
    def __init__(self, request: Request):
        self.request = request
        who = request.decided_by.name if request.decided_by else "someone else"
        if request.status == RequestStatus.CANCELLED:
            message = "This request was cancelled by its requester before it was decided."
        else:
            verb = "rejected" if request.status == RequestStatus.REJECTED else "approved"
            message = f"{who} {verb} this request {age(request.decided_at)}."
        super().__init__(message)


class NotAllowed(RequestError):
    pass


class DecidedConcurrently(RequestError):
    def __init__(self):
        super().__init__("Another decision on this request was saved at the same moment.")


class CommentRequired(RequestError):
    def __init__(self, message: str = "A rejection needs a comment for the product team."):
        super().__init__(message)


class InvalidDecision(RequestError):
    pass


class ActiveRequestExists(RequestError):
    """The product already has a request that is not finished: one at a time."""

    def __init__(self, request: Request):
        self.request = request
        super().__init__(
            f"{request.product.name} already has an open request (#{request.id},"
            f" {request.type_label.lower()}, {request.status_label.lower()}); it must finish or"
            " be cancelled before another can be made."
        )


class JustificationNeeded(RequestError):
    def __init__(self):
        super().__init__(
            "Say why more is needed: a quota increase that measured usage does not support is"
            " reviewed, and the reviewer reads your reason beside the figures."
        )


class ReasonNeeded(RequestError):
    def __init__(self):
        super().__init__(
            "Say why the product should be deleted: the super admin who decides reads it beside"
            " what still runs in its namespaces."
        )


class EndNotAllowed(RequestError):
    """The end day of a temporary increase cannot be taken (temporary.end_problem)."""


class NothingChanged(RequestError):
    def __init__(self):
        super().__init__(
            "Nothing was changed: the form holds what is live now. No request was made."
        )


class WrongState(RequestError):
    """The product is not in a state that allows this request."""


class ConfirmationMismatch(RequestError):
    def __init__(self, plate: str):
        super().__init__(f"Type the licence plate {plate} exactly to confirm the deletion.")


class TooManySubmissions(RequestError):
    """A product team member sent as many requests and comments within the hour as one person
    may (REQUEST_SUBMISSIONS_PER_HOUR): each may email addresses they typed."""

    def __init__(self, allowed: int, minutes: int):
        self.minutes = minutes
        super().__init__(
            f"You have sent {allowed} requests and comments within the last hour, as many as"
            f" one person may. Nothing was sent: try again in {minutes}"
            f" minute{'s' if minutes != 1 else ''}. What you wrote is kept here."
        )


SUBMISSION_WINDOW = timedelta(hours=1)


def submission_blocker(person) -> TooManySubmissions | None:
    """Why ``person`` may not send another request or comment now (they sent
    ``REQUEST_SUBMISSIONS_PER_HOUR`` within the last hour), or None if they may. Counted from
    the requests and comments themselves, so every process and pod agrees. Super admins are
    not held up: they answer many requests an hour, and their role is given by few."""
    allowed = current_app.config["REQUEST_SUBMISSIONS_PER_HOUR"]
    if not allowed or person.is_super_admin:
        return None
    since = utcnow() - SUBMISSION_WINDOW
    sent = union_all(
        select(Request.created_at.label("at")).where(
            Request.requested_by_id == person.id, Request.created_at > since
        ),
        select(RequestEvent.created_at.label("at")).where(
            RequestEvent.actor_id == person.id,
            RequestEvent.kind == "comment",
            RequestEvent.created_at > since,
        ),
    ).subquery()
    newest = db.session.scalars(select(sent.c.at).order_by(sent.c.at.desc()).limit(allowed)).all()
    if len(newest) < allowed:
        return None
    # Another may be sent once the oldest of the newest ``allowed`` is an hour old.
    wait = newest[-1] + SUBMISSION_WINDOW - utcnow()
    return TooManySubmissions(allowed, max(1, math.ceil(wait.total_seconds() / 60)))


def by_submission_key(key: str | None, requester) -> Request | None:
    """The request an earlier send of the same form made, if any (a double click, a re-sent
    POST): the caller shows it instead of making another."""
    if not key:
        return None
    return db.session.scalar(
        select(Request).where(
            Request.submission_key == key, Request.requested_by_id == requester.id
        )
    )


def active_request(product: Product) -> Request | None:
    return db.session.scalar(
        select(Request).where(
            Request.product_id == product.id,
            Request.status.in_([s.value for s in ACTIVE_STATUSES]),
        )
    )


def _new_request(product, kind, requester, original, requested, key) -> Request:
    request = Request(
        product=product,
        type=kind.value,
        requested_by_id=requester.id,
        requested_by=requester,
        original_data=original,
        requested_data=requested,
        submission_key=key or None,
        status=None,
        events=[],
    )
    db.session.add(request)
    return request


def submit_create(
    data: product_services.ProductData, requester, submission_key: str | None = None
) -> Request:
    """Create a product and its pending create request; tell the team and the reviewers."""
    product = product_services.create_product(data, requester)
    request = _new_request(
        product, RequestType.CREATE, requester, None, data.as_dict(), submission_key
    )
    transition(request, RequestStatus.PENDING, requester, note="Submitted for review.")
    db.session.flush()
    return request


# The state a product must be in for each kind of request.
REQUIRED_STATE = {
    RequestType.CREATE: ProductStatus.NOT_CREATED,  # asked for again; a new one is submit_create
    RequestType.EDIT: ProductStatus.ACTIVE,
    RequestType.DELETE: ProductStatus.ACTIVE,
}


def blocker_for(product: Product, kind: RequestType) -> RequestError | None:
    """Why ``product`` cannot take a request of ``kind`` now, or None if it can."""
    active = active_request(product)
    if active is not None:
        return ActiveRequestExists(active)
    allowed = REQUIRED_STATE[kind]
    if product.status != allowed:
        doing = {
            RequestType.CREATE: "only a product that was not created can be asked for again",
            RequestType.EDIT: "only an active product can be changed",
            RequestType.DELETE: "only an active product can be deleted",
        }[kind]
        return WrongState(
            f"{product.name} is {ProductStatus(product.status).label.lower()}: {doing}."
        )
    return None


def _require_state(product: Product, kind: RequestType) -> None:
    blocker = blocker_for(product, kind)
    if blocker is not None:
        raise blocker


def submit_again(
    product: Product,
    data: product_services.ProductData,
    requester,
    submission_key: str | None = None,
) -> Request:
    """Ask again for a product whose first request was rejected or cancelled: the same product
    and licence plate, with the data of the new form."""
    _require_state(product, RequestType.CREATE)
    product_services.reopen(product, data)
    request = _new_request(
        product, RequestType.CREATE, requester, None, data.as_dict(), submission_key
    )
    transition(
        request, RequestStatus.PENDING, requester, note="Asked for again; submitted for review."
    )
    db.session.flush()
    return request


def preview_edit(product: Product, data: product_services.ProductData, ends_on=temporary.KEEP):
    """The changes an edit would make to the live product, and the path they would take: a
    quota increase is judged on the product's measured usage (registry/usage/rules.py); a
    new end day of the open temporary increase is a change too (``ends_on``: ``KEEP`` keeps
    it)."""
    before = product_services.live_data(product)
    after = {**data.as_dict(), "cluster": product.cluster_name}  # the cluster never changes
    found = changes.diff(before, after)
    if ends_on is not temporary.KEEP:
        moved = temporary.change(temporary.open_for(product.id), ends_on)
        if moved is not None:
            found.append(moved)
    config = current_app.config
    increases = [c.field for c in found if c.kind == "quota" and c.direction > 0]
    evidence = None
    if increases:
        measured = usage.usage_of(product.licence_plate, product.cluster_name)
        judged = usage_rules.judge(increases, before, after, measured, config)
        evidence = judged.as_dict()
        if judged.passed and config["AUTO_APPROVE_USED_INCREASES"]:
            # Every increase is supported: each carries its figures into the rules table.
            why = {c.field: c.why for c in judged.checks}
            found = [dataclasses.replace(c, measured=why.get(c.field, "")) for c in found]
    verdict = changes.assess(found, config["AUTO_APPROVE_EDITS"], evidence)
    if verdict.needs_review and increases:
        # Why it waits, in the figures: shown before submit and on the timeline.
        verdict = dataclasses.replace(
            verdict, reasons=(*verdict.reasons, f"measured usage: {judged.summary}")
        )
    return before, after, found, verdict


def submit_edit(
    product: Product,
    data: product_services.ProductData,
    requester,
    submission_key: str | None = None,
    justification: str | None = None,
    ends_on=temporary.KEEP,
) -> Request:
    """Ask for a change to a live product. Changes that the automatic-approval rules allow go
    to the provisioner at once, with the rule on the timeline; the rest wait for review. A quota
    increase that waits needs a justification; the usage evidence is kept either way.
    ``ends_on``: the day the quotas raised go back (a temporary increase; ``KEEP``: the open
    one's day, if any)."""
    _require_state(product, RequestType.EDIT)
    before, after, found, verdict = preview_edit(product, data, ends_on)
    if not found:
        raise NothingChanged()
    current = temporary.open_for(product.id)
    ends_on = temporary.resolve(current, ends_on)
    problem = temporary.end_problem(ends_on, verdict.increases, current)
    if problem:
        raise EndNotAllowed(problem)
    justification = (justification or "").strip() or None
    if verdict.needs_justification and not justification:
        raise JustificationNeeded()
    request = _new_request(product, RequestType.EDIT, requester, before, after, submission_key)
    request.justification = justification
    request.usage_evidence = verdict.evidence
    request.quota_ends_on = ends_on
    if verdict.needs_review:
        transition(request, RequestStatus.PENDING, requester, note=verdict.summary)
    else:
        request.decided_at = utcnow()
        request.decision_data = after
        transition(request, RequestStatus.APPROVED, requester, note=verdict.summary)
    db.session.flush()
    if verdict.evidence is not None:
        # The figures an increase was judged on, in the audit log as on the request.
        evidence = verdict.evidence
        audit.record(
            "usage_judged",
            target=f"request #{request.id}",
            detail=f"{'passed' if evidence['passed'] else 'to review'} on {evidence['cluster']}: "
            + usage_rules.summary_of(evidence),
            actor=requester,
        )
    return request


def submit_return(product: Product, namespaces: dict, why: str) -> Request:
    """The registry asks, in its own name, for ``namespaces`` (the earlier quotas of a temporary
    increase that ended): approved at once, as agreed when the increase was granted, and applied
    by the provisioner like any change. Raises ``ActiveRequestExists`` while another is open."""
    _require_state(product, RequestType.EDIT)
    before = product_services.live_data(product)
    after = {**before, "namespaces": namespaces}
    request = _new_request(
        product, RequestType.EDIT, accounts.registry_account(), before, after, None
    )
    request.justification = why
    request.decided_at = utcnow()
    request.decision_data = after
    gone = "; ".join(c.sentence for c in changes.diff(before, after))
    transition(request, RequestStatus.APPROVED, None, note=f"Approved automatically: {why} {gone}.")
    db.session.flush()
    return request


def submit_delete(
    product: Product,
    requester,
    confirmation: str,
    submission_key: str | None = None,
    reason: str | None = None,
) -> Request:
    """Ask for a live product to be deleted; the team confirms by typing its licence plate and
    says why (the reviewer reads it beside what still runs). A super admin always decides."""
    if (confirmation or "").strip().lower() != product.licence_plate:
        raise ConfirmationMismatch(product.licence_plate)
    reason = (reason or "").strip() or None
    if reason is None:
        raise ReasonNeeded()
    _require_state(product, RequestType.DELETE)
    live = product_services.live_data(product)
    request = _new_request(product, RequestType.DELETE, requester, live, live, submission_key)
    request.justification = reason
    transition(request, RequestStatus.PENDING, requester, note="Deletion requested.")
    db.session.flush()
    return request


def _lock(request_id: int) -> Request | None:
    # FOR UPDATE makes a second decider wait for the first, then see its decision (PostgreSQL);
    # on SQLite, the version column turns the race into StaleDataError at flush instead.
    query = (
        select(Request)
        .where(Request.id == request_id)
        .options(
            selectinload(Request.product).selectinload(Product.contacts),
            selectinload(Request.requested_by),
            selectinload(Request.decided_by),
        )
        .with_for_update(of=Request)
        .execution_options(populate_existing=True)
    )
    return db.session.scalar(query)


def contact_role_of(request: Request, person) -> ContactRole | None:
    """The contact role ``person`` holds for the request's product: on the live product (by
    account), or named in the request itself (what was asked, or what was live when it was
    asked; by their verified email). None if they are no contact of it."""
    for contact in request.product.contacts:
        if contact.user_id == person.id:
            return ContactRole(contact.role)
    email = (person.email or "").lower()
    for data in (request.requested_data, request.original_data, request.decision_data):
        for role, contact in ((data or {}).get("contacts") or {}).items():
            if contact and (contact.get("email") or "").lower() == email:
                return ContactRole(role)
    return None


def involvement(actor) -> dict[int, str]:
    """The products ``actor`` may not decide for having a hand in them, each with why: those
    they created (ever), those they asked for anything on, and those whose contact they were,
    within ``SEPARATE_DUTIES_DAYS``. Read once per web request (the queue asks per item)."""
    cache = g.setdefault("separation_of_duties", {}) if has_request_context() else {}
    if actor.id in cache:
        return cache[actor.id]
    since = utcnow() - timedelta(days=current_app.config["SEPARATE_DUTIES_DAYS"])
    why: dict[int, str] = {}
    history = db.session.execute(
        select(ProductContactHistory.product_id, ProductContactHistory.role)
        .where(
            ProductContactHistory.user_id == actor.id,
            or_(ProductContactHistory.ended_at.is_(None), ProductContactHistory.ended_at >= since),
        )
        .order_by(ProductContactHistory.id.desc())
    )
    for product_id, role in history:
        label = ContactRole(role).label.lower()
        why.setdefault(product_id, f"You were the {label} of this product")
    asked = db.session.execute(
        select(Request.product_id, func.max(Request.id))
        .where(Request.requested_by_id == actor.id, Request.created_at >= since)
        .group_by(Request.product_id)
    )
    for product_id, request_id in asked:
        why[product_id] = f"You asked for a change to this product (request #{request_id})"
    created = db.session.scalars(select(Product.id).where(Product.created_by_id == actor.id))
    for product_id in created:
        why[product_id] = "You created this product"
    cache[actor.id] = why
    return why


def decision_blocker(request: Request, actor) -> str | None:
    """Why ``actor`` may not decide ``request`` (separation of duties), or None if they may.

    Nobody decides a request they submitted; with ``SEPARATE_DUTIES`` (the default), nobody
    decides a request of a product they are a contact of, created, or had a hand in lately
    (:func:`involvement`) either.
    """
    if request.requested_by_id == actor.id:
        return "You submitted this request: another super admin must decide it."
    if current_app.config["SEPARATE_DUTIES"]:
        role = contact_role_of(request, actor)
        if role is not None:
            return (
                f"You are the {role.label.lower()} of this product: another super admin must"
                " decide it."
            )
        why = involvement(actor).get(request.product_id)
        if why is not None:
            return f"{why}: another super admin must decide it."
    return None


def decide(
    request_id: int,
    actor,
    approve: bool,
    comment: str | None = None,
    quotas: dict[str, dict[str, str]] | None = None,
    ends_on=temporary.KEEP,
) -> Request:
    """Approve or reject a pending request as super admin ``actor``.

    ``quotas`` (environment -> kind -> option): an edit approved with other quotas than asked;
    the reason goes in ``comment``. ``ends_on``: an edit granted until that day (a temporary
    increase; None: for good; ``KEEP``: as asked). Raises :class:`AlreadyDecided` when the
    request is no longer pending (another admin was first, or the requester cancelled),
    :class:`NotAllowed` for a request the admin submitted or (``SEPARATE_DUTIES``) of a product
    they are a contact of, :class:`CommentRequired` for a rejection, or a change of quotas,
    without a comment.
    """
    if not actor.is_super_admin:
        raise NotAllowed("Only super admins decide requests.")
    request = _lock(request_id)
    if request is None:
        raise LookupError(request_id)
    if request.status != RequestStatus.PENDING:
        raise AlreadyDecided(request)
    blocker = decision_blocker(request, actor)
    if blocker is not None:
        raise NotAllowed(blocker)
    comment = (comment or "").strip() or None
    if not approve and not comment:
        raise CommentRequired()

    decided = request.requested_data
    if approve and quotas:
        decided = _with_quotas(request, quotas)
        if decided != request.requested_data and not comment:
            raise CommentRequired("Say why the granted quotas differ from those asked for.")
    if approve and ends_on is not temporary.KEEP and ends_on != request.quota_ends_on:
        if request.type != RequestType.EDIT:
            raise InvalidDecision("Only a change can be granted until a day.")
        grants_more = any(
            c.kind == "quota" and c.direction > 0
            for c in changes.diff(request.original_data, decided)
        )
        problem = temporary.end_problem(
            ends_on, grants_more, temporary.open_for(request.product_id)
        )
        if problem:
            raise InvalidDecision(problem)
        request.quota_ends_on = ends_on

    request.decided_by_id = actor.id
    request.decided_by = actor
    request.decided_at = utcnow()
    request.decision_comment = comment
    if approve:
        request.decision_data = decided
    try:
        transition(
            request, RequestStatus.APPROVED if approve else RequestStatus.REJECTED, actor, comment
        )
        db.session.flush()
    except StaleDataError as exc:
        # The version column caught a decision that landed between our read and our write.
        raise DecidedConcurrently() from exc
    audit.record(
        "decision",
        target=f"request #{request.id}",
        detail=_decision_detail(request, approve, comment),
        actor=actor,
    )
    return request


def _decision_detail(request: Request, approve: bool, comment: str | None) -> str:
    """What the audit log keeps of a decision: the verdict, the product, the comment, and the
    quotas granted where they differ from those asked for."""
    product = request.product
    parts = [
        f"{'Approved' if approve else 'Rejected'} {request.type_label.lower()}"
        f" of {product.name} ({product.licence_plate})."
    ]
    if comment:
        parts.append(f"Comment: {comment}")
    if approve and request.quota_ends_on:
        parts.append(f"Quotas raised go back on {request.quota_ends_on.isoformat()}.")
    if approve and request.decision_data != request.requested_data:
        asked = request.requested_data["namespaces"]
        granted = request.decision_data["namespaces"]
        changed = [
            f"{env} {kind} {granted[env][kind]} (asked {asked[env][kind]})"
            for env in ENVIRONMENTS
            for kind in QUOTA_KINDS
            if granted[env][kind] != asked[env][kind]
        ]
        parts.append("Granted quotas: " + "; ".join(changed))
    return " ".join(parts)


def _with_quotas(request: Request, quotas: dict[str, dict[str, str]]) -> dict:
    if request.type != RequestType.EDIT:
        raise NotAllowed("Only a change can be approved with other quotas than asked.")
    known = {o.name: kind for kind, opts in reference.quota_options_by_kind().items() for o in opts}
    namespaces = {}
    for env in ENVIRONMENTS:
        namespaces[env] = {}
        for kind in QUOTA_KINDS:
            option = (
                quotas.get(env, {}).get(kind) or request.requested_data["namespaces"][env][kind]
            )
            if known.get(option) != kind:
                raise InvalidDecision(f"Choose a {kind} quota for {env} from the list.")
            namespaces[env][kind] = option
    return {**request.requested_data, "namespaces": namespaces}


def cancel(request_id: int, actor) -> Request:
    """Withdraw a pending request; only the person who submitted it may."""
    request = _lock(request_id)
    if request is None:
        raise LookupError(request_id)
    if request.requested_by_id != actor.id:
        raise NotAllowed("Only the person who submitted a request can cancel it.")
    if request.status != RequestStatus.PENDING:
        raise AlreadyDecided(request)
    try:
        transition(request, RequestStatus.CANCELLED, actor, note="Cancelled by the requester.")
        db.session.flush()
    except StaleDataError as exc:
        raise DecidedConcurrently() from exc
    return request


# Comments: a question before a decision, an answer, a word on a failure.
COMMENT_MAX = 2000
COMMENTABLE = (RequestStatus.PENDING, RequestStatus.FAILED)


class CommentInvalid(RequestError):
    """Empty, or longer than ``COMMENT_MAX``: the form shows why, with the text kept."""


class CommentClosed(RequestError):
    """The request is past the point where a comment helps (decided, provisioned...)."""

    def __init__(self, request: Request):
        super().__init__(
            f"Request #{request.id} is {request.status_label.lower()}: comments are for pending"
            " and failed requests only."
        )


def comment_blocker(request: Request, user) -> RequestError | None:
    """Why ``user`` may not comment on ``request`` now, or None if they may. The caller has
    checked that they may read it (its team, the staff): support reads, and only reads."""
    if user.is_support:
        return NotAllowed("Support staff read requests; they do not comment on them.")
    if request.status_enum not in COMMENTABLE:
        return CommentClosed(request)
    return None


def add_comment(request: Request, author, text: str) -> RequestEvent:
    """Put ``author``'s comment on the request's timeline (it moves nothing; mail sends it to
    the other side). The caller commits."""
    blocker = comment_blocker(request, author)
    if blocker is not None:
        raise blocker
    text = (text or "").strip()
    if not text:
        raise CommentInvalid("Write a comment first: it is empty.")
    if len(text) > COMMENT_MAX:
        raise CommentInvalid(
            f"A comment is at most {COMMENT_MAX:,} characters; this one has {len(text):,}."
        )
    too_many = submission_blocker(author)
    if too_many is not None:
        raise too_many
    return note(request, "comment", text, author)
