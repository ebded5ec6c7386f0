"""The lifecycle's signals. Features that react (provisioning, mail, metrics) connect to them in
``registry.wiring``, so the lifecycle imports none of them."""

from blinker import Namespace

_signals = Namespace()

#: Sent by :func:`registry.requests.lifecycle.transition` after every move, inside the caller's
#: transaction: ``request_moved.send(request, event=event)``. Receivers write outbox rows; they
#: never commit or talk to the network.
request_moved = _signals.signal("request-moved")

#: Sent by :func:`registry.requests.lifecycle.note` after a timeline entry that moves nothing (a
#: comment, a dead letter resolved, a reminder): ``request_noted.send(request, event=event)``.
request_noted = _signals.signal("request-noted")
