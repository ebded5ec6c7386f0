"""The request lifecycle: the one table of allowed moves and the one function that makes them.

Nothing else assigns ``Request.status``. Each move appends a :class:`RequestEvent` and tells the
notifications service, which writes the outbox rows in the same transaction.
"""

from ..extensions import db
from ..products.models import ProductStatus
from ..timeutil import utcnow
from .models import Request, RequestEvent, RequestStatus, RequestType

S = RequestStatus

# (from, to) -> what the move does to the product, by request type. ``None`` is "not yet saved".
TRANSITIONS: dict[tuple[RequestStatus | None, RequestStatus], dict[RequestType, ProductStatus]] = {
    (None, S.PENDING): {RequestType.CREATE: ProductStatus.PENDING_APPROVAL},
    (S.PENDING, S.APPROVED): {RequestType.CREATE: ProductStatus.APPROVED},
    (S.PENDING, S.REJECTED): {RequestType.CREATE: ProductStatus.DELETED},
    (S.PENDING, S.CANCELLED): {RequestType.CREATE: ProductStatus.DELETED},
}


class IllegalTransition(Exception):
    def __init__(self, request: Request, to: RequestStatus):
        self.request, self.to = request, to
        current = request.status or "new"
        super().__init__(f"Request {request.id or '(new)'} cannot move from {current} to {to}.")


def can_transition(request: Request, to: RequestStatus) -> bool:
    current = RequestStatus(request.status) if request.status else None
    return (current, to) in TRANSITIONS


def transition(request: Request, to: RequestStatus, actor, note: str | None = None) -> RequestEvent:
    """Move ``request`` to ``to`` on behalf of ``actor`` (a user, or None for the system).

    Checks the move against :data:`TRANSITIONS`, records the event, updates the product and
    queues the notifications. Flushes; the caller commits. A concurrent move of the same request
    fails at flush with ``StaleDataError`` (the version column), so a decision is stored once.
    """
    from ..notifications import services as notifications

    to = RequestStatus(to)
    current = RequestStatus(request.status) if request.status else None
    effects = TRANSITIONS.get((current, to))
    if effects is None:
        raise IllegalTransition(request, to)

    now = utcnow()
    request.status = to.value
    request.updated_at = now
    product_status = effects.get(RequestType(request.type))
    if product_status is not None:
        request.product.status = product_status.value
    event = RequestEvent(
        request=request,
        actor_id=actor.id if actor is not None else None,
        from_status=current.value if current else None,
        to_status=to.value,
        note=note,
        created_at=now,
    )
    db.session.add(event)
    db.session.flush()
    notifications.request_moved(request, event)
    return event
