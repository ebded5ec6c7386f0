"""API tokens: made by a product's team for its product (read, or read and request) or by a
super admin for a ministry or everything (read, or read and decide). 256 random bits, shown once,
kept as SHA-256; each acts through an account of its own that cannot sign in; made and revoked
in the audit log."""

import secrets
import uuid
from datetime import timedelta

from flask import current_app
from sqlalchemy import select, update

from ..audit import services as audit
from ..auth.models import Role, User
from ..auth.service_accounts import hash_token
from ..extensions import db
from ..timeutil import utcnow
from .models import Access, ApiToken, Scope

PREFIX = "prt_"
NAME_MAX = 80
# last_used_at is written at most this often per token: a busy pipeline is not a write a call.
TOUCH_EVERY = timedelta(minutes=1)


class TokenError(ValueError):
    """A token cannot be made or revoked; the message says why."""


def _account(name: str, access: Access) -> User:
    """The token's own account: it asks and decides in the token's name, never signs in, and
    (like every account at registry.invalid) gets no email."""
    user = User(
        email=f"api-{uuid.uuid4().hex[:16]}@registry.invalid",
        name=f"API token “{name}”",
        role=(Role.SUPER_ADMIN if access == Access.DECIDE else Role.USER).value,
        active=False,
    )
    db.session.add(user)
    return user


def create(
    name: str,
    scope: Scope,
    access: Access,
    creator,
    product=None,
    ministry_code: str | None = None,
    days: int | None = None,
) -> tuple[ApiToken, str]:
    """A new token and its secret (shown once). The caller has checked that ``creator`` may
    make it (the product's team, or a super admin)."""
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise TokenError(f"Give the token a name of at most {NAME_MAX} characters.")
    longest = int(current_app.config["API_TOKEN_MAX_DAYS"])
    days = int(current_app.config["API_TOKEN_DAYS"]) if days is None else days
    if not 1 <= days <= longest:
        raise TokenError(f"A token lasts from 1 to {longest} days.")
    if scope == Scope.PRODUCT and (product is None or access == Access.DECIDE):
        raise TokenError("A product's token reads it, or reads it and asks for changes.")
    if scope != Scope.PRODUCT and access == Access.REQUEST:
        raise TokenError("A ministry's or everything's token reads, or reads and decides.")
    if scope == Scope.MINISTRY and not ministry_code:
        raise TokenError("Choose the ministry the token reads.")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        name=name,
        token_hash=hash_token(secret),
        prefix=secret[:12],
        scope=scope.value,
        access=access.value,
        product=product,
        ministry_code=ministry_code if scope == Scope.MINISTRY else None,
        user=_account(name, access),
        created_by_id=creator.id,
        expires_at=utcnow() + timedelta(days=days),
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        "api_token_created",
        target=f"API token {token.prefix}… “{name}”",
        detail=f"{describe(token)}; expires {token.expires_at:%Y-%m-%d}.",
        actor=creator,
    )
    return token, secret


def describe(token: ApiToken) -> str:
    over = {
        Scope.PRODUCT: f"product {token.product.licence_plate}" if token.product else "a product",
        Scope.MINISTRY: f"ministry {token.ministry_code}",
        Scope.ALL: "every product",
    }[Scope(token.scope)]
    does = {"read": "reads", "request": "reads and asks for changes", "decide": "reads and decides"}
    return f"{does[token.access].capitalize()}: {over}"


def revoke(token: ApiToken, actor) -> ApiToken:
    if token.revoked_at is not None:
        raise TokenError(f"Token “{token.name}” is revoked already.")
    token.revoked_at, token.revoked_by_id = utcnow(), actor.id
    audit.record(
        "api_token_revoked", target=f"API token {token.prefix}… “{token.name}”", actor=actor
    )
    db.session.flush()
    return token


def check(secret: str | None) -> tuple[ApiToken | None, str | None]:
    """The usable token ``secret`` is, or (None, why not) in words for the caller."""
    if not secret:
        return None, "Send a token: Authorization: Bearer prt_…"
    token = db.session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None:
        return None, "This token is not one the registry issued."
    if token.revoked_at is not None:
        return None, "This token was revoked."
    if token.expires_at <= utcnow():
        return None, "This token has expired."
    return token, None


def touch(token: ApiToken) -> None:
    """Note that the token was used, at most once a minute (its own short transaction)."""
    now = utcnow()
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return
    db.session.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
    db.session.commit()


def of_product(product_id: int) -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken).where(ApiToken.product_id == product_id).order_by(ApiToken.id.desc())
        )
    )


def staff_tokens() -> list[ApiToken]:
    return list(
        db.session.scalars(
            select(ApiToken)
            .where(ApiToken.scope != Scope.PRODUCT.value)
            .order_by(ApiToken.id.desc())
        )
    )
