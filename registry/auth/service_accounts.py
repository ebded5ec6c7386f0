"""Service accounts: machine callers of the HTTP API (the provisioner's pipeline), each with a
bearer token of 256 random bits, shown once and kept as SHA-256, with an expiry."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from ..audit import services as audit
from ..extensions import db
from ..timeutil import utcnow
from .models import ServiceAccount


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# How long a new service account's token works unless told otherwise.
DEFAULT_TOKEN_DAYS = 365
# Ten years: a token lives no longer (and a date that far ahead is one Python can hold).
MAX_TOKEN_DAYS = 3650


class ServiceAccountError(ValueError):
    """A service account cannot be made or changed; the message says why."""


def service_accounts() -> list[ServiceAccount]:
    return list(db.session.scalars(select(ServiceAccount).order_by(ServiceAccount.name)))


def create_service_account(
    name: str, expires_in_days: int | None = DEFAULT_TOKEN_DAYS, actor=None
) -> tuple[ServiceAccount, str]:
    """A provisioner service account and its bearer token, which is shown once and kept hashed.

    ``expires_in_days``: the token is refused after that many days; 0 or None, never.
    The audit log records it, by ``actor`` (default: the signed-in user, else "cli").
    """
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise ServiceAccountError("A service account needs a name of at most 80 characters.")
    if expires_in_days is not None and not 0 <= expires_in_days <= MAX_TOKEN_DAYS:
        raise ServiceAccountError(
            f"The number of days must be from 0 (never expires) to {MAX_TOKEN_DAYS:,}."
        )
    if db.session.scalar(select(ServiceAccount.id).where(ServiceAccount.name == name)):
        raise ServiceAccountError(f"A service account named {name} exists already.")
    token = "prs_" + secrets.token_urlsafe(32)
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    account = ServiceAccount(name=name, token_hash=hash_token(token), expires_at=expires_at)
    db.session.add(account)
    db.session.flush()
    audit.record(
        "service_account_created",
        target=f"service account {name}",
        detail=f"Expires {expires_at:%Y-%m-%d %H:%M} UTC." if expires_at else "Never expires.",
        actor=actor,
    )
    return account, token


def revoke_service_account(account: ServiceAccount, actor=None) -> ServiceAccount:
    """Turn a service account off: its token is refused from the commit on."""
    if not account.active:
        raise ServiceAccountError(f"Service account {account.name} is revoked already.")
    account.active = False
    audit.record("service_account_revoked", target=f"service account {account.name}", actor=actor)
    db.session.flush()
    return account


@dataclass(frozen=True)
class TokenCheck:
    """What a presented bearer token is: an account that may call (``reason`` None), or why not.
    ``account`` is set whenever the token is one we issued, usable or not."""

    account: ServiceAccount | None
    reason: str | None

    @property
    def ok(self) -> bool:
        return self.account is not None and self.reason is None


def check_token(token: str) -> TokenCheck:
    """Look a bearer token up and note the call on its account (``last_used_at``), whether or
    not the token may still be used. The caller commits that note before doing the work, so
    a call that fails later still counts as a use."""
    if not token:
        return TokenCheck(None, "a valid provisioner bearer token is required")
    account = db.session.scalar(
        select(ServiceAccount).where(ServiceAccount.token_hash == hash_token(token))
    )
    if account is None:
        return TokenCheck(None, "a valid provisioner bearer token is required")
    now = utcnow()
    account.last_used_at = now
    if not account.active:
        return TokenCheck(account, f"the service account {account.name} was revoked")
    if account.expires_at is not None and account.expires_at <= now:
        return TokenCheck(
            account,
            f"the token of service account {account.name} expired on"
            f" {account.expires_at:%Y-%m-%d %H:%M} UTC",
        )
    return TokenCheck(account, None)


def service_account_for(token: str) -> ServiceAccount | None:
    """The account a usable token belongs to, or None."""
    check = check_token(token)
    return check.account if check.ok else None
