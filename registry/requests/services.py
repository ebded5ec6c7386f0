"""What people do with requests: submit, decide, cancel. All moves go through ``lifecycle``."""

from sqlalchemy import select
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.exc import StaleDataError

from ..extensions import db
from ..products import services as product_services
from ..products.models import Product
from ..timeutil import utcnow
from .lifecycle import transition
from .models import Request, RequestStatus, RequestType


class RequestError(Exception):
    """A request could not be acted on; the message is shown to the user as it is."""


class AlreadyDecided(RequestError):
    def __init__(self, request: Request):
        self.request = request
        who = request.decided_by.name if request.decided_by else "someone else"
        if request.status == RequestStatus.CANCELLED:
            message = "This request was cancelled by its requester before it was decided."
        else:
            message = f"{who} already {request.status} this request."
        super().__init__(message)


class NotAllowed(RequestError):
    pass


class DecidedConcurrently(RequestError):
    def __init__(self):
        super().__init__("Another decision on this request was saved at the same moment.")


class CommentRequired(RequestError):
    def __init__(self):
        super().__init__("A rejection needs a comment for the product team.")


def submit_create(data: product_services.ProductData, requester) -> Request:
    """Create a product and its pending create request; tell the team and the reviewers."""
    product = product_services.create_product(data, requester)
    request = Request(
        product=product,
        type=RequestType.CREATE.value,
        requested_by_id=requester.id,
        requested_by=requester,
        original_data=None,
        requested_data=data.as_dict(),
        status=None,
        events=[],
    )
    db.session.add(request)
    transition(request, RequestStatus.PENDING, requester, note="Submitted for review.")
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


def decide(request_id: int, actor, approve: bool, comment: str | None = None) -> Request:
    """Approve or reject a pending request as super admin ``actor``.

    Raises :class:`AlreadyDecided` when the request is no longer pending (another admin was
    first, or the requester cancelled), :class:`NotAllowed` for a request the admin submitted,
    :class:`CommentRequired` for a rejection without a comment.
    """
    if not actor.is_super_admin:
        raise NotAllowed("Only super admins decide requests.")
    request = _lock(request_id)
    if request is None:
        raise LookupError(request_id)
    if request.status != RequestStatus.PENDING:
        raise AlreadyDecided(request)
    if request.requested_by_id == actor.id:
        raise NotAllowed("You submitted this request: another super admin must decide it.")
    comment = (comment or "").strip() or None
    if not approve and not comment:
        raise CommentRequired()

    request.decided_by_id = actor.id
    request.decided_by = actor
    request.decided_at = utcnow()
    request.decision_comment = comment
    if approve:
        request.decision_data = request.requested_data
    try:
        transition(
            request, RequestStatus.APPROVED if approve else RequestStatus.REJECTED, actor, comment
        )
        db.session.flush()
    except StaleDataError as exc:
        # The version column caught a decision that landed between our read and our write.
        raise DecidedConcurrently() from exc
    return request


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
