"""The lifecycle's one signal. Features that react to a move (provisioning, mail) connect to it in
``create_app``, so the lifecycle imports none of them."""

from blinker import Namespace

_signals = Namespace()

#: Sent by :func:`registry.requests.lifecycle.transition` after every move, inside the caller's
#: transaction: ``request_moved.send(request, event=event)``. Receivers write outbox rows; they
#: never commit or talk to the network.
request_moved = _signals.signal("request-moved")
