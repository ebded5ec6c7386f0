"""The two outboxes' rows: an email, and a provisioning message. Each is written in the
transaction of the change it tells of and sent after the commit; this package owns their life
(claiming, backoff, waking senders) and the reads of what is late (``backlog.py``)."""

import enum
import uuid
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db, in_values
from ..timeutil import utcnow


class EmailStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class OutboxEmail(db.Model):
    """An email written in the same transaction as the change it tells of, sent after the commit."""

    __tablename__ = "outbox_emails"
    __table_args__ = (
        CheckConstraint(
            in_values("status", EmailStatus),
            name="status_known",
        ),
        CheckConstraint("status <> 'sent' OR sent_at IS NOT NULL", name="sent_has_time"),
        Index("ix_outbox_emails_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    kind: Mapped[str] = mapped_column(String(40))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True)
    recipients: Mapped[list] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(255))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(10), default=EmailStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A sender that claims a message holds it until then; another sender skips it meanwhile.
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    # "smtp", or "mailbox" when kept for the development mailbox page.
    delivered_via: Mapped[str | None] = mapped_column(String(10))

    request = relationship("Request")


class MessageStatus(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"


class OutboxMessage(db.Model):
    """A provisioning message: written with the approval, published to JetStream after commit."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(in_values("status", MessageStatus), name="status_known"),
        CheckConstraint("status <> 'sent' OR sent_at IS NOT NULL", name="sent_has_time"),
        Index("ix_outbox_messages_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The Nats-Msg-Id header: JetStream stores a message once per id within its duplicate window,
    # so a relay that dies between publishing and marking sent cannot store it twice. A UUID,
    # not the row number, so that a database started afresh can never collide with old ids.
    message_id: Mapped[str] = mapped_column(
        String(36), unique=True, default=lambda: str(uuid.uuid4())
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    subject: Mapped[str] = mapped_column(String(120))
    payload: Mapped[dict] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(10), default=MessageStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    stream_sequence: Mapped[int | None]
