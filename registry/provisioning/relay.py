"""The relay: publishes the provisioning outbox to JetStream after the commit that wrote it.

Any number of relays may run: each claims rows (``FOR UPDATE SKIP LOCKED`` and a conditional
claim), and JetStream drops a re-published message by its ``Nats-Msg-Id``.
"""

import json
import logging
import threading
from datetime import timedelta

import nats.errors
import nats.js.errors

from .. import outbox
from ..extensions import db
from ..outbox.models import MessageStatus, OutboxMessage
from ..timeutil import utcnow
from . import messages

log = logging.getLogger(__name__)

# Set after a commit that wrote provisioning messages: the relay publishes at once.
wake = threading.Event()

# A publish that JetStream has not acknowledged by then counts as failed.
PUBLISH_TIMEOUT = 2.0
BATCH = 10
# Long enough for a batch whose publishes all time out, and no longer: rows claimed by a relay
# that died are taken over by another within half a minute.
CLAIM_SECONDS = 30

# Failures that say NATS (or JetStream) is away, not that this message is wrong.
NATS_AWAY = (
    TimeoutError,  # nats.errors.TimeoutError is one
    nats.errors.NoRespondersError,
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    # A cluster electing the stream's leader (a node just went away): no stream answers yet.
    nats.js.errors.NoStreamResponseError,
    ConnectionError,
)


def claim_due(limit: int = BATCH) -> list[OutboxMessage]:
    ids = outbox.claim_due(OutboxMessage, limit, CLAIM_SECONDS)
    return [db.session.get(OutboxMessage, i) for i in ids]


async def publish(js, message: OutboxMessage, timeout: float = PUBLISH_TIMEOUT):
    """Publish one outbox message; JetStream keeps it once per Nats-Msg-Id."""
    return await js.publish(
        message.subject,
        json.dumps(message.payload).encode(),
        timeout=timeout,
        headers={"Nats-Msg-Id": message.message_id},
    )


async def relay_once(js, app) -> int:
    """Publish the due outbox messages; mark each sent only after JetStream acknowledged it.

    NATS away: every claim of the round is released for the next one. A message refused for
    itself (JetStream answers with an error) waits its backoff while the others go on.
    """
    sent = 0
    base, ceiling = app.config["NATS_RETRY_BASE_SECONDS"], app.config["NATS_RETRY_MAX_SECONDS"]
    with app.app_context():
        messages = claim_due()
        for index, message in enumerate(messages):
            message.attempts += 1
            try:
                ack = await publish(js, message)
            except Exception as exc:  # any failure means "not stored yet"
                message.last_error = f"{type(exc).__name__}: {exc}"[:2000]
                message.claimed_until = None
                if isinstance(exc, NATS_AWAY):
                    # Not this message's fault: no growing backoff, so it goes soon after NATS
                    # is back (a reconnect also makes it due at once).
                    message.next_attempt_at = utcnow() + timedelta(seconds=base)
                    for waiting in messages[index + 1 :]:
                        waiting.claimed_until = None
                    db.session.commit()
                    log.debug("Provisioning message %s not published: %s", message.id, exc)
                    break
                message.next_attempt_at = utcnow() + outbox.backoff(message.attempts, base, ceiling)
                db.session.commit()
                log.warning("Provisioning message %s refused: %s", message.id, exc)
                continue
            message.status = MessageStatus.SENT.value
            message.sent_at = utcnow()
            message.stream_sequence = ack.seq
            message.last_error = None
            message.claimed_until = None
            db.session.commit()
            sent += 1
    return sent


def due_now(app) -> int:
    """NATS is back: every pending message is due at once, whatever its backoff said."""
    with app.app_context():
        return outbox.due_now(OutboxMessage)


def next_due_in(app, default: float) -> float:
    with app.app_context():
        return max(0.05, outbox.next_due_in(OutboxMessage, default))


def install_commit_hook() -> None:
    """Wake the relay after any commit that wrote provisioning messages."""
    outbox.wake_on_commit(messages.OUTBOX_FLAG, lambda: wake.set())
