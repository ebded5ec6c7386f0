"""The request lifecycle: the one table of allowed moves and the one function that makes them.

Nothing else assigns ``Request.status``. Each move appends a :class:`RequestEvent` and tells the
provisioning and notifications services, which write their outbox rows in the same transaction.
"""

from ..extensions import db
from ..products.models import ProductStatus
from ..timeutil import utcnow
from .models import Request, RequestEvent, RequestStatus, RequestType

S = RequestStatus
IN_FLIGHT = (S.APPROVED, S.PROVISIONING, S.PARTIALLY_PROVISIONED)
NO_EFFECT: dict = {}

# (from, to) -> what the move does to the product, by request type. ``None`` is "not yet saved".
TRANSITIONS: dict[tuple[RequestStatus | None, RequestStatus], dict[RequestType, ProductStatus]] = {
    (None, S.PENDING): {RequestType.CREATE: ProductStatus.PENDING_APPROVAL},
    # A super admin decides; the requester may withdraw first.
    (S.PENDING, S.APPROVED): {RequestType.CREATE: ProductStatus.APPROVED},
    (S.PENDING, S.REJECTED): {RequestType.CREATE: ProductStatus.DELETED},
    (S.PENDING, S.CANCELLED): {RequestType.CREATE: ProductStatus.DELETED},
    # The provisioner reports steps; the same status again is one more step on the timeline.
    (S.APPROVED, S.PROVISIONING): NO_EFFECT,
    (S.PROVISIONING, S.PROVISIONING): NO_EFFECT,
    (S.APPROVED, S.PARTIALLY_PROVISIONED): NO_EFFECT,
    (S.PROVISIONING, S.PARTIALLY_PROVISIONED): NO_EFFECT,
    (S.PARTIALLY_PROVISIONED, S.PARTIALLY_PROVISIONED): NO_EFFECT,
    **{(s, S.PROVISIONED): {RequestType.CREATE: ProductStatus.PROVISIONED} for s in IN_FLIGHT},
    **{(s, S.FAILED): NO_EFFECT for s in IN_FLIGHT},
    # A super admin re-sends a failed or stuck request: a new attempt of the same request.
    **{(s, S.APPROVED): NO_EFFECT for s in (*IN_FLIGHT, S.FAILED)},
}


class IllegalTransition(Exception):
    def __init__(self, request: Request, to: RequestStatus):
        self.request, self.to = request, to
        current = request.status or "new"
        super().__init__(f"Request {request.id or '(new)'} cannot move from {current} to {to}.")


def can_transition(request: Request, to: RequestStatus) -> bool:
    current = RequestStatus(request.status) if request.status else None
    return (current, to) in TRANSITIONS


def transition(
    request: Request, to: RequestStatus, actor, note: str | None = None, **details
) -> RequestEvent:
    """Move ``request`` to ``to`` on behalf of ``actor`` (a user, or None for the system).

    Checks the move against :data:`TRANSITIONS`, records the event (with ``details``: the
    provisioner's ``step``, ``cluster`` and ``reported_at``), updates the product, and lets the
    provisioning and notifications services queue their messages. The caller flushes or commits:
    a concurrent move of the same request then fails with ``StaleDataError`` (the version
    column), so a decision is stored once. Not flushing here lets the bridge write a batch of
    reports in one flush.
    """
    from ..notifications import services as notifications
    from ..provisioning import services as provisioning

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
        **details,
    )
    db.session.add(event)
    if request.id is None:
        db.session.flush()  # the emails of this step link to the request by its id
    provisioning.request_moved(request, event)
    notifications.request_moved(request, event)
    return event
