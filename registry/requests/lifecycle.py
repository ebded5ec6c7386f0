"""The request lifecycle: the one table of allowed moves and the one function that makes them.

Nothing else assigns ``Request.status`` or ``Product.status``, or writes a timeline entry
(:func:`note` adds those that move nothing). Each move appends a
:class:`RequestEvent`, sets the product's state from :data:`PRODUCT_STATES`, applies a finished
edit to the product, and sends :data:`signals.request_moved`: provisioning and notifications
listen to it and write their outbox rows in the same transaction.
"""

from sqlalchemy import inspect

from ..extensions import db
from ..products import services as product_services
from ..products.models import ProductStatus
from ..timeutil import utcnow
from . import signals
from .models import Request, RequestEvent, RequestStatus, RequestType

S = RequestStatus
T = RequestType
P = ProductStatus
IN_FLIGHT = (S.APPROVED, S.PROVISIONING, S.PARTIALLY_PROVISIONED)
EVERY_KIND = frozenset(RequestType)

# (from, to) -> the kinds of request that may make the move. ``None`` is "not yet saved".
TRANSITIONS: dict[tuple[RequestStatus | None, RequestStatus], frozenset[RequestType]] = {
    (None, S.PENDING): EVERY_KIND,
    # An edit that the automatic-approval rules let through goes straight to the provisioner.
    (None, S.APPROVED): frozenset({T.EDIT}),
    # A super admin decides; the requester may withdraw first.
    (S.PENDING, S.APPROVED): EVERY_KIND,
    (S.PENDING, S.REJECTED): EVERY_KIND,
    (S.PENDING, S.CANCELLED): EVERY_KIND,
    # The provisioner reports steps; the same status again is one more step on the timeline.
    (S.APPROVED, S.PROVISIONING): EVERY_KIND,
    (S.PROVISIONING, S.PROVISIONING): EVERY_KIND,
    (S.APPROVED, S.PARTIALLY_PROVISIONED): EVERY_KIND,
    (S.PROVISIONING, S.PARTIALLY_PROVISIONED): EVERY_KIND,
    (S.PARTIALLY_PROVISIONED, S.PARTIALLY_PROVISIONED): EVERY_KIND,
    **{(s, S.PROVISIONED): EVERY_KIND for s in IN_FLIGHT},
    **{(s, S.FAILED): EVERY_KIND for s in IN_FLIGHT},
    # A super admin re-sends a failed or stuck request: a new attempt of the same request.
    **{(s, S.APPROVED): EVERY_KIND for s in (*IN_FLIGHT, S.FAILED)},
}

# The product's state is a function of its latest request's kind and status, and nothing else.
_IN_FLIGHT_STATES = {
    T.CREATE: P.BEING_CREATED,
    T.EDIT: P.CHANGE_APPLYING,
    T.DELETE: P.BEING_DELETED,
}
PRODUCT_STATES: dict[tuple[RequestType, RequestStatus], ProductStatus] = {
    (T.CREATE, S.PENDING): P.REQUESTED,
    (T.CREATE, S.REJECTED): P.NOT_CREATED,
    (T.CREATE, S.CANCELLED): P.NOT_CREATED,
    (T.CREATE, S.PROVISIONED): P.ACTIVE,
    (T.EDIT, S.PENDING): P.CHANGE_PENDING,
    (T.EDIT, S.REJECTED): P.ACTIVE,
    (T.EDIT, S.CANCELLED): P.ACTIVE,
    (T.EDIT, S.PROVISIONED): P.ACTIVE,
    (T.DELETE, S.PENDING): P.DELETE_PENDING,
    (T.DELETE, S.REJECTED): P.ACTIVE,
    (T.DELETE, S.CANCELLED): P.ACTIVE,
    (T.DELETE, S.PROVISIONED): P.DELETED,
    **{(kind, S.FAILED): P.FAILED for kind in RequestType},
    **{(kind, s): state for kind, state in _IN_FLIGHT_STATES.items() for s in IN_FLIGHT},
}


class IllegalTransition(Exception):
    def __init__(self, request: Request, to: RequestStatus):
        self.request, self.to = request, to
        current = request.status or "new"
        super().__init__(
            f"Request {request.id or '(new)'} ({request.type}) cannot move from {current} to {to}."
        )


def _allows(request: Request, current: RequestStatus | None, to: RequestStatus) -> bool:
    return RequestType(request.type) in TRANSITIONS.get((current, to), ())


def can_transition(request: Request, to: RequestStatus) -> bool:
    current = RequestStatus(request.status) if request.status else None
    return _allows(request, current, RequestStatus(to))


def transition(
    request: Request, to: RequestStatus, actor, note: str | None = None, **details
) -> RequestEvent:
    """Move ``request`` to ``to`` on behalf of ``actor`` (a user, or None for the system).

    Checks the move against :data:`TRANSITIONS`, records the event (with ``details``: the
    provisioner's ``step``, ``cluster`` and ``reported_at``), sets the product's state, applies
    a provisioned edit to the product, and sends :data:`signals.request_moved`. The caller
    flushes or commits: a concurrent move of the same request then fails with
    ``StaleDataError`` (the version column), so a decision is stored once. Not flushing here
    lets the bridge write a batch of reports in one flush.
    """
    to = RequestStatus(to)
    current = RequestStatus(request.status) if request.status else None
    if not _allows(request, current, to):
        raise IllegalTransition(request, to)

    now = utcnow()
    kind = RequestType(request.type)
    request.status = to.value
    request.updated_at = now
    product = request.product
    product.status = PRODUCT_STATES[(kind, to)].value
    if kind == T.EDIT and to == S.PROVISIONED:
        product_services.apply_change(product, request.decision_data or request.requested_data)
    event = RequestEvent(
        actor_id=actor.id if actor is not None else None,
        from_status=current.value if current else None,
        to_status=to.value,
        note=note,
        created_at=now,
        **details,
    )
    if request.id is None or "events" in inspect(request).dict:
        event.request = request  # a new request, or one whose timeline is already loaded
    else:
        # Only the row: appending to the timeline would load every earlier event first, and
        # the bridge writes hundreds of events a second.
        event.request_id = request.id
    db.session.add(event)
    if request.id is None:
        db.session.flush()  # the emails of this step link to the request by its id
    signals.request_moved.send(request, event=event)
    return event


# Timeline entries that move nothing: a question or an answer on the request, a provisioner's
# report replayed or discarded, a reminder to the super admins of a stuck request.
NOTE_KINDS = frozenset({"comment", "dead_letter", "reminder", "temporary"})


def note(request: Request, kind: str, text: str, actor=None, at=None) -> RequestEvent:
    """Add an entry of ``kind`` (:data:`NOTE_KINDS`) to the request's timeline, at its status
    (``at``: when, by default now), and send :data:`signals.request_noted` (mail reacts to
    comments). Flushes; the caller commits."""
    if kind not in NOTE_KINDS:
        raise ValueError(f"not a kind of note: {kind!r}")
    event = RequestEvent(
        request_id=request.id,
        kind=kind,
        actor_id=actor.id if actor is not None else None,
        from_status=request.status,
        to_status=request.status,
        note=text,
        created_at=at or utcnow(),
    )
    if actor is not None:
        event.actor = actor
    db.session.add(event)
    db.session.flush()
    signals.request_noted.send(request, event=event)
    return event
