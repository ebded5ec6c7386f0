import enum
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db, in_values
from ..products.models import Product
from ..timeutil import utcnow


class Webhook(db.Model):
    """Where a product's events are sent, and the secret they are signed with (Standard
    Webhooks: ``whsec_`` and base64). One per product."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), unique=True)
    url: Mapped[str] = mapped_column(String(2000))
    # Needed in the clear to sign each delivery (HMAC); shown to the team once, when made.
    secret: Mapped[str] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    product: Mapped[Product] = relationship()


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"  # gave up after WEBHOOK_MAX_ATTEMPTS; "send again" makes it pending


class WebhookDelivery(db.Model):
    """One event for one webhook: an outbox row, written in the transaction of the change it
    tells of, sent after the commit and retried with backoff."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(in_values("status", DeliveryStatus), name="status_known"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook_id_id", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    # Standard Webhooks' webhook-id: the same for every attempt, so a receiver drops repeats.
    message_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.PENDING.value)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_until: Mapped[datetime | None]
    last_status_code: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]

    webhook: Mapped[Webhook] = relationship()
