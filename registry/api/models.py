import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db, in_values
from ..products.models import Product
from ..timeutil import utcnow


class Scope(enum.StrEnum):
    PRODUCT = "product"  # one product, made by its team
    MINISTRY = "ministry"  # every product of a ministry, made by a super admin
    ALL = "all"  # every product, made by a super admin


class Access(enum.StrEnum):
    READ = "read"
    REQUEST = "request"  # read, and ask for what the forms ask for (a product's team)
    DECIDE = "decide"  # read, and decide requests (a super admin's ministry or all token)


class ApiToken(db.Model):
    """A bearer token for /api/v1: shown once, kept as SHA-256, with an expiry. It acts through
    an account of its own (``user``, which cannot sign in), so requests it makes name it and it
    outlives the person who made it."""

    __tablename__ = "api_tokens"
    __table_args__ = (
        CheckConstraint(in_values("scope", Scope), name="scope_known"),
        CheckConstraint(in_values("access", Access), name="access_known"),
        CheckConstraint(
            "(scope = 'product' AND product_id IS NOT NULL AND access <> 'decide')"
            " OR (scope = 'ministry' AND ministry_code IS NOT NULL AND access <> 'request')"
            " OR (scope = 'all' AND access <> 'request')",
            name="scope_fits_access",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters, to tell tokens apart in lists and logs ("prt_Ab3d…").
    prefix: Mapped[str] = mapped_column(String(12))
    scope: Mapped[str] = mapped_column(String(10))
    access: Mapped[str] = mapped_column(String(10))
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    ministry_code: Mapped[str | None] = mapped_column(ForeignKey("ministries.code"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    product: Mapped[Product | None] = relationship()
    user = relationship("User", foreign_keys=[user_id])
    created_by = relationship("User", foreign_keys=[created_by_id])

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and self.expires_at > utcnow()

    @property
    def state(self) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= utcnow() else "active"


class ApiCall(db.Model):
    """Calls a token made in one minute: one upsert a call, the same count in every process
    (``API_CALLS_PER_MINUTE``); rows of past minutes are swept."""

    __tablename__ = "api_calls"

    token_id: Mapped[int] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class ApiIdempotency(db.Model):
    """The first answer to a POST sent with an Idempotency-Key, per token: the same key again
    gets the same answer and does nothing. The row is written before the call runs (a second
    call with the key meanwhile is told it is in progress) and kept ``IDEMPOTENCY_HOURS``."""

    __tablename__ = "api_idempotency"

    token_id: Mapped[int] = mapped_column(
        ForeignKey("api_tokens.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # "POST /api/v1/requests/42/comments": a key is for one call.
    call: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    status: Mapped[int | None]
    body: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(300))
