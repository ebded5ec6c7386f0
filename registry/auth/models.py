from datetime import datetime

from flask import current_app, has_app_context
from flask_login import UserMixin
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.security import check_password_hash, generate_password_hash

from ..access import Role
from ..extensions import db, in_values
from ..timeutil import utcnow

# The registry's own account (``auth.services.registry_account``): a reserved domain no person
# can hold an address at.
MACHINE_DOMAIN = "@registry.invalid"
REGISTRY_EMAIL = "registry" + MACHINE_DOMAIN


class User(UserMixin, db.Model):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            in_values("role", (r.value for r in Role)),
            name="role_known",
        ),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(20), default=Role.USER.value)
    # The subject claim of a future single sign-on provider (Keycloak, Entra ID); unique when set.
    external_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Raised on sign-out, a role change and deactivation: every session made before stops working.
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    def get_id(self) -> str:
        # The session keeps the version too: raising it ends every session made before.
        return f"{self.id}.{self.session_version}"

    def end_sessions(self) -> None:
        self.session_version = (self.session_version or 0) + 1

    def set_password(self, password: str) -> None:
        method = current_app.config["PASSWORD_HASH_METHOD"] if has_app_context() else "scrypt"
        self.password_hash = generate_password_hash(password, method=method)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_super_admin(self) -> bool:
        return self.role == Role.SUPER_ADMIN

    @property
    def is_support(self) -> bool:
        return self.role == Role.SUPPORT

    @property
    def reads_everything(self) -> bool:
        return self.role in (Role.SUPER_ADMIN, Role.SUPPORT)

    @property
    def role_label(self) -> str:
        return Role(self.role).label

    @property
    def is_registry(self) -> bool:
        """The registry's own account: the requester of what it asks for by itself (a
        temporary increase given back). It cannot sign in and gets no email."""
        return self.email == REGISTRY_EMAIL

    @property
    def is_machine(self) -> bool:
        """An account no person holds (the registry's own, an API token's): it cannot sign in
        and gets no email."""
        return self.email.endswith(MACHINE_DOMAIN)

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class ServiceAccount(db.Model):
    """A machine account (the provisioner's pipeline) calling the HTTP API with a bearer token."""

    __tablename__ = "service_accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    # SHA-256 of the token: tokens are 256 random bits, so a slow password hash adds nothing.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # Every call that presents the token, whether or not it succeeds.
    last_used_at: Mapped[datetime | None]
    # After this the token is refused; None: it does not expire.
    expires_at: Mapped[datetime | None]
    active: Mapped[bool] = mapped_column(default=True)


class RateLimit(db.Model):
    """Something whose refused sign-ins are counted: an account (``account:<email>``) or a
    client address (``address:<ip>``). Counting an attempt locks its row first, so attempts on
    one key are counted one after another, by every process and pod (registry/auth/guessing.py).
    """

    __tablename__ = "rate_limits"

    key: Mapped[str] = mapped_column(String(300), primary_key=True)
    # When its newest hit stops counting: from then on the row and its hits may be deleted.
    expires_at: Mapped[datetime] = mapped_column(index=True)


class RateLimitHit(db.Model):
    """One counted attempt: it counts against its key until it is a window old."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(ForeignKey("rate_limits.key", ondelete="CASCADE"))
    at: Mapped[datetime]


class ProviderSession(db.Model):
    """What the identity provider gave one signed-in browser: its tokens, kept on the server.

    The browser's session cookie holds only a random handle (its SHA-256 is kept here), so no
    token travels in a cookie. The row is what lets the registry ask the provider again during
    the session (refresh token, access token for userinfo), name the session at sign-out
    (the ID token as ``id_token_hint``) and end it when the provider says so (``provider_sid``
    from back-channel logout). No row, no single sign-on session.
    """

    __tablename__ = "provider_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # The user's session version when the row was made: rows of an older one are dead sessions.
    session_version: Mapped[int] = mapped_column()
    subject: Mapped[str] = mapped_column(String(255))
    provider_sid: Mapped[str | None] = mapped_column(String(255), index=True)
    id_token: Mapped[str] = mapped_column(Text)
    access_token: Mapped[str | None] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # When the provider was last asked about this session (or someone started asking).
    checked_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<ProviderSession user={self.user_id} sid={self.provider_sid}>"
