"""What is late in the outboxes: rows that should have gone by now (health, metrics and
operations read these), and a request's provisioning messages that still wait."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select

from ..extensions import db
from ..timeutil import utcnow
from .models import EmailStatus, MessageStatus, OutboxEmail, OutboxMessage


@dataclass(frozen=True)
class Backlog:
    """Rows of an outbox that should have gone by now."""

    what: str
    count: int
    oldest_seconds: float
    last_error: str | None

    @property
    def sentence(self) -> str:
        minutes = int(self.oldest_seconds // 60)
        age = f"{minutes} minute{'s' if minutes != 1 else ''}" if minutes else "under a minute"
        error = f" Last error: {self.last_error}" if self.last_error else ""
        return f"{self.count} {self.what} not sent, the oldest due for {age}.{error}"


def stuck_backlogs(threshold: float | None = None) -> list[Backlog]:
    """The outboxes whose oldest due row has waited longer than ``threshold`` seconds
    (``OUTBOX_STUCK_SECONDS``): a relay or a sender that cannot deliver."""
    threshold = current_app.config["OUTBOX_STUCK_SECONDS"] if threshold is None else threshold
    now = utcnow()
    found = []
    for what, model, pending in (
        ("provisioning messages", OutboxMessage, MessageStatus.PENDING.value),
        ("emails", OutboxEmail, EmailStatus.PENDING.value),
    ):
        # Due since: a row waits from its creation, or from the end of its backoff.
        late = (model.status == pending, model.next_attempt_at < now - timedelta(seconds=threshold))
        count, oldest = db.session.execute(
            select(func.count(), func.min(model.next_attempt_at)).where(*late)
        ).one()
        if count:
            last_error = db.session.scalar(
                select(model.last_error)
                .where(*late, model.last_error.is_not(None))
                .order_by(model.id.desc())
                .limit(1)
            )
            found.append(Backlog(what, count, (now - oldest).total_seconds(), last_error))
    return found


def unsent_messages(request_id: int) -> tuple[int, str | None]:
    """How many provisioning messages of a request still wait to reach NATS, and why."""
    rows = db.session.execute(
        select(OutboxMessage.attempts, OutboxMessage.last_error).where(
            OutboxMessage.request_id == request_id,
            OutboxMessage.status == MessageStatus.PENDING.value,
        )
    ).all()
    errors = [error for _, error in rows if error]
    return len(rows), (errors[-1] if errors else None)


# Each outbox by the name metrics give it: its rows and their "not yet sent" status.
OUTBOXES = {
    "mail": (OutboxEmail, EmailStatus.PENDING.value),
    "nats": (OutboxMessage, MessageStatus.PENDING.value),
}


def pending(name: str) -> tuple[int, datetime | None]:
    """How many rows of outbox ``name`` are not yet sent, and when the oldest was written."""
    model, status = OUTBOXES[name]
    count, oldest = db.session.execute(
        select(func.count(), func.min(model.created_at)).where(model.status == status)
    ).one()
    return count, oldest
