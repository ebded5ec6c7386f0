"""What accounts tell other features, connected in ``registry.wiring``."""

from blinker import Namespace

_signals = Namespace()

#: Sent when an account is made, or its email changed, with an email verified by an
#: administrator or the identity provider: ``email_verified.send(user)``, in the caller's
#: transaction. Products resolve the contacts that name it to the account.
email_verified = _signals.signal("email-verified")
