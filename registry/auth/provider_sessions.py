"""Single sign-on sessions on the server: the provider's tokens of each signed-in browser, and
the provider asked again during the session.

The cookie holds a random handle; the tokens (ID, access, refresh) stay in ``ProviderSession``.
A session signed in through the provider lasts while its row does: sign-out, a grant the
provider withdrew and back-channel logout delete rows, and the next request of that session,
wherever the cookie was copied to, is signed out.

Every ``OIDC_RECHECK_SECONDS`` (not on every request) a session's next request asks the provider
again: the refresh grant (refused: the grant is lost, the session ends), then userinfo with the
access token (refused: the same), and the role from what the provider now says is applied
through ``services.change_role``. One request of a session asks at a time: the others go on with
what was known, so a provider that rotates refresh tokens never sees one used twice.

If the provider cannot be reached, the session goes on and the next check is an interval later:
nobody can sign in while it is down either, and the absolute lifetime still ends the session.
"""

import hashlib
import json
import logging
import secrets
from datetime import timedelta

import requests
from authlib.integrations.base_client import OAuthError
from flask import current_app, request, session
from flask_login import current_user, login_user
from joserfc import jws
from joserfc.errors import JoseError
from sqlalchemy import delete, or_, select, update

from .. import security
from ..audit import services as audit
from ..extensions import db
from ..timeutil import utcnow
from . import id_tokens, oidc, oidc_answer, services
from .models import ProviderSession, User

log = logging.getLogger(__name__)

HANDLE = "sso"  # the session key of the random handle
# Where sessions signed in before kept the ID token, in the cookie.
LEGACY_ID_TOKEN = "id_token"  # noqa: S105 - a session key, not a secret
PROVIDER = "identity provider"  # who ends a session, in the audit log
ENDED = "Your sign-in through the identity provider has ended. Sign in again."
# Requests that ask nothing of a session: files, and the provider's own back-channel call.
NOT_CHECKED = {"static", "auth.oidc_backchannel_logout"}


class LostGrant(Exception):
    """The provider no longer vouches for this session; the message is a short reason of ours."""


def _hash(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


def start(user: User, answer) -> None:
    """Keep the provider's tokens of a sign-in on the server, and only a handle in the cookie.
    Call after ``security.start_session(user)``. Flushes; the caller commits."""
    _sweep(user)
    handle = secrets.token_urlsafe(32)
    sid = answer.claims.get("sid")
    db.session.add(
        ProviderSession(
            handle_hash=_hash(handle),
            user_id=user.id,
            session_version=user.session_version,
            subject=str(answer.claims["sub"]),
            provider_sid=sid[:255] if isinstance(sid, str) else None,
            id_token=answer.id_token,
            access_token=answer.access_token,
            refresh_token=answer.refresh_token,
        )
    )
    session[HANDLE] = handle
    db.session.flush()


def _sweep(user: User) -> None:
    """Rows no session can use any more: older than the absolute lifetime, or of this user's
    sessions ended since (by sign-out, a role change, a deactivation)."""
    oldest = utcnow() - timedelta(hours=current_app.config["SESSION_MAX_HOURS"])
    db.session.execute(
        delete(ProviderSession).where(
            or_(
                ProviderSession.created_at < oldest,
                (ProviderSession.user_id == user.id)
                & (ProviderSession.session_version != user.session_version),
            )
        )
    )


def _current() -> ProviderSession | None:
    handle = session.get(HANDLE)
    if not isinstance(handle, str):
        return None
    return db.session.scalar(
        select(ProviderSession).where(ProviderSession.handle_hash == _hash(handle))
    )


def end_all(user: User) -> str | None:
    """At sign-out: the ID token of this browser's session (the provider's logout wants it as a
    hint), and every row of the user deleted, as sign-out ends all their sessions. Flushes."""
    row = _current()
    id_token = row.id_token if row is not None and row.user_id == user.id else None
    db.session.execute(delete(ProviderSession).where(ProviderSession.user_id == user.id))
    return id_token


def check() -> None:
    """Before each request: a single sign-on session whose row is gone is signed out; one whose
    provider was last asked more than OIDC_RECHECK_SECONDS ago has it asked now."""
    # A session signed in before the tokens moved to the server carries its ID token in the
    # cookie and no handle: it has no row, so it is signed out below.
    if HANDLE not in session and LEGACY_ID_TOKEN not in session:
        return  # anonymous, or signed in with a password: nothing to look up
    if request.endpoint in NOT_CHECKED or not current_user.is_authenticated:
        return
    row = _current()
    if row is None or row.user_id != current_user.id:
        security.end_session(ENDED)
        return
    if not oidc.enabled():
        return
    now = utcnow()
    due_before = now - timedelta(seconds=current_app.config["OIDC_RECHECK_SECONDS"])
    if row.checked_at > due_before:
        return
    # Claim the check: of concurrent requests of this session, one asks the provider.
    claimed = db.session.execute(
        update(ProviderSession)
        .where(ProviderSession.id == row.id, ProviderSession.checked_at <= due_before)
        .values(checked_at=now)
    )
    db.session.commit()
    if claimed.rowcount != 1:
        return
    _recheck(db.session.get(ProviderSession, row.id))


def _recheck(row: ProviderSession) -> None:
    user = db.session.get(User, current_user.id)
    try:
        claims = _ask_provider(row)
    except LostGrant as exc:
        db.session.rollback()
        db.session.execute(delete(ProviderSession).where(ProviderSession.id == row.id))
        audit.record("session_ended", actor_label=PROVIDER, target=user.email, detail=str(exc))
        db.session.commit()
        security.end_session(ENDED)
        return
    except oidc_answer.PROVIDER_ERRORS as exc:
        db.session.rollback()
        log.warning("The identity provider could not check a session of %s: %r", user.email, exc)
        return
    if claims is not None and services.change_role(
        user, oidc.role_from(claims), why="(from the identity provider, during a session)"
    ):
        # The change ended the user's other sessions; this one has just been vouched for.
        login_user(user)
        row.session_version = user.session_version
    db.session.commit()


def _ask_provider(row: ProviderSession) -> dict | None:
    """Refresh the grant and read userinfo; the claims to take the role from, or None when the
    provider said nothing of roles. Raises LostGrant when the provider refuses the session."""
    metadata = oidc.client().load_server_metadata()
    id_claims: dict = {}
    if row.refresh_token:
        try:
            tokens = oidc.client().fetch_access_token(
                grant_type="refresh_token", refresh_token=row.refresh_token
            )
        except OAuthError as exc:
            if exc.error == "invalid_grant":
                raise LostGrant("the identity provider refused to refresh the session") from exc
            raise
        access_token = tokens["access_token"]
        if not isinstance(access_token, str) or not access_token:
            raise ValueError("the refresh answer had no access token")
        row.access_token = access_token
        if isinstance(tokens.get("refresh_token"), str):
            row.refresh_token = tokens["refresh_token"]
        if tokens.get("id_token") is not None:
            id_claims = _refreshed_id_token(row, tokens["id_token"], access_token)
            row.id_token = tokens["id_token"]
    info: dict = {}
    if metadata.get("userinfo_endpoint") and row.access_token:
        try:
            info = dict(
                oidc.client().userinfo(
                    token={"access_token": row.access_token, "token_type": "Bearer"}
                )
            )
        except requests.HTTPError as exc:
            if exc.response is not None and exc.response.status_code in (401, 403):
                raise LostGrant("the identity provider refused the session's access token") from exc
            raise
        if info.get("sub") != row.subject:
            raise LostGrant("the identity provider's userinfo named another subject")
    roles_claim = current_app.config["OIDC_ROLES_CLAIM"]
    if id_claims:
        # As at sign-in: the ID token's claims, userinfo's where it has none.
        return {**info, **id_claims}
    if oidc.claim(info, roles_claim) is not None:
        return info
    return None  # roles are not in what the provider sends here: keep the role


def _refreshed_id_token(row: ProviderSession, id_token, access_token: str) -> dict:
    # OpenID Connect Core 12.2: the same issuer, subject and audience as at sign-in, and a
    # nonce, if it has one, the sign-in's.
    try:
        claims = id_tokens.id_token_claims(
            id_token, nonce=None, access_token=access_token, subject=row.subject
        )
    except id_tokens.TokenRefused as exc:
        raise LostGrant(f"the refreshed ID token was refused: {exc}") from exc
    if "nonce" in claims and claims["nonce"] != _claims_of_kept(row.id_token).get("nonce"):
        raise LostGrant("the refreshed ID token's nonce is not the sign-in's")
    return claims


def _claims_of_kept(id_token: str) -> dict:
    """The claims of an ID token checked when it was kept."""
    try:
        claims = json.loads(jws.extract_compact(id_token.encode()).payload)
    except (ValueError, TypeError, JoseError):
        return {}
    return claims if isinstance(claims, dict) else {}


def backchannel_logout(logout_token) -> int:
    """End the sessions a back-channel logout token names: those of its session id (``sid``),
    else every session of its subject. Raises id_tokens.TokenRefused. Flushes; the caller
    commits. The number of sessions ended."""
    claims = id_tokens.logout_token_claims(logout_token)
    sub, sid = claims.get("sub"), claims.get("sid")
    rows = select(ProviderSession)
    if sid:
        rows = rows.where(ProviderSession.provider_sid == sid)
    if sub:
        rows = rows.where(ProviderSession.subject == sub)
    ended = db.session.scalars(rows).all()
    users = {row.user_id for row in ended}
    if not sid:
        # Every session of the person: password sessions included, if the account has one.
        user = db.session.scalar(select(User).where(User.external_subject == sub))
        if user is not None:
            user.end_sessions()
            users.add(user.id)
    for row in ended:
        db.session.delete(row)
    for user_id in users:
        user = db.session.get(User, user_id)
        audit.record(
            "session_ended",
            actor_label=PROVIDER,
            target=user.email,
            detail="back-channel logout from the identity provider"
            + (" (one session)" if sid else " (every session)"),
        )
    db.session.flush()
    return len(ended)
