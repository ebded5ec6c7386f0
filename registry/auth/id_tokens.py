"""Checking what the identity provider signs: ID tokens and back-channel logout tokens.

Authlib fetches the provider's keys (its JWKS) once and keeps them; joserfc checks signatures
and claims. Three things are done here rather than through ``parse_id_token``:

- A provider may rotate its signing key under the same key id (kid). Authlib fetches the keys
  again only for an unknown kid, so every sign-in would fail until the workers restart. Here a
  signature that does not verify has the keys fetched again, once, and is checked again.
  Refetches are at least ``REFETCH_SECONDS`` apart in a process, so tokens anyone can post to
  the back-channel logout endpoint cannot make the registry hammer the provider.
- Only the algorithms of ``OIDC_ID_TOKEN_ALGORITHMS`` are taken (asymmetric ones), whatever the
  provider's discovery document lists: never ``none``, never HS256 keyed with the client secret.
- The audience must name this client. Authlib's check passes a token for another audience whose
  ``azp`` names this client.
"""

import threading
import time

from authlib.oidc.core import CodeIDToken
from flask import current_app
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from . import oidc

# Clocks of the provider and the registry may differ by this much.
LEEWAY_SECONDS = 60
REFETCH_SECONDS = 10
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"

_refetch_lock = threading.Lock()


class TokenRefused(Exception):
    """A token the registry will not take; the message is a short reason of our own."""


def _keys(force: bool = False) -> KeySet:
    try:
        return KeySet.import_key_set(oidc.client().fetch_jwk_set(force=force))
    except (JoseError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        # RuntimeError: Authlib's, for a discovery document without a jwks_uri.
        raise TokenRefused("the identity provider's keys could not be read") from exc


def _may_refetch() -> bool:
    state = current_app.extensions.setdefault("registry_oidc_jwks", {"refetched_at": 0.0})
    with _refetch_lock:
        now = time.monotonic()
        if state["refetched_at"] and now - state["refetched_at"] < REFETCH_SECONDS:
            return False
        state["refetched_at"] = now
        return True


def verified(token: object) -> jwt.Token:
    """The header and claims of ``token`` once its signature is checked with the provider's keys
    (fetched again once when it does not verify). Raises TokenRefused."""
    if not isinstance(token, str) or token.count(".") != 2:
        raise TokenRefused("it is not a signed token")
    registry = JWSRegistry(algorithms=current_app.config["OIDC_ID_TOKEN_ALGORITHMS"])
    try:
        try:
            return jwt.decode(token, _keys(), registry=registry)
        except (BadSignatureError, InvalidKeyIdError):
            # The provider may have rotated its key since the keys were fetched.
            if not _may_refetch():
                raise
            return jwt.decode(token, _keys(force=True), registry=registry)
    except (BadSignatureError, InvalidKeyIdError) as exc:
        raise TokenRefused("its signature is not the identity provider's") from exc
    except UnsupportedAlgorithmError as exc:
        raise TokenRefused("it is signed with an algorithm the registry refuses") from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise TokenRefused("it is malformed") from exc


def _issuer() -> str:
    issuer = oidc.client().load_server_metadata().get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise TokenRefused("the identity provider's discovery document names no issuer")
    return issuer


def _claims_refused(exc: ClaimError) -> TokenRefused:
    if isinstance(exc, ExpiredTokenError):
        return TokenRefused("it has expired")
    if isinstance(exc, MissingClaimError):
        return TokenRefused(f"it has no '{exc.claim}' claim")
    reasons = {
        "iss": "it was issued by another issuer",
        "aud": "it was issued to another client",
        "azp": "it was issued to another client",
        "nonce": "its nonce is not this sign-in's",
        "iat": "it was issued in the future",
        "nbf": "it is not valid yet",
        "at_hash": "it does not match the access token",
        "sub": "its subject is not valid",
    }
    return TokenRefused(reasons.get(exc.claim, f"its '{exc.claim}' claim is not valid"))


def id_token_claims(
    id_token: object, *, nonce: str | None, access_token: str | None, subject: str | None = None
) -> dict:
    """The claims of an ID token from the token endpoint, checked: signature, algorithm,
    issuer, audience (this client), expiry, the nonce of this sign-in (when given) and, for a
    token from a refresh, the same subject as at sign-in. Raises TokenRefused."""
    token = verified(id_token)
    client_id = current_app.config["OIDC_CLIENT_ID"]
    options = {
        "iss": {"essential": True, "value": _issuer()},
        "aud": {"essential": True, "value": client_id},
    }
    params = {"nonce": nonce, "client_id": client_id, "access_token": access_token}
    claims = CodeIDToken(token.claims, token.header, options, params)
    try:
        claims.validate(leeway=LEEWAY_SECONDS)
    except ClaimError as exc:
        raise _claims_refused(exc) from exc
    if subject is not None and claims.get("sub") != subject:
        raise TokenRefused("its subject is not the one signed in")
    return dict(claims)


def logout_token_claims(logout_token: object) -> dict:
    """The claims of a back-channel logout token, checked as OpenID Connect Back-Channel Logout
    1.0 (2.6) says: signature and algorithm as for ID tokens; issuer, audience, issued-at and
    expiry; a subject or a session id; the logout event; no nonce (so an ID token is never taken
    for one, nor one for an ID token). Raises TokenRefused."""
    token = verified(logout_token)
    # Explicitly typed logout tokens say so; a token typed as anything else is another kind.
    typ = str(token.header.get("typ", "logout+jwt")).lower()
    if typ not in ("logout+jwt", "jwt", "application/logout+jwt"):
        raise TokenRefused("it is not a logout token")
    registry = jwt.JWTClaimsRegistry(
        leeway=LEEWAY_SECONDS,
        iss={"essential": True, "value": _issuer()},
        aud={"essential": True, "value": current_app.config["OIDC_CLIENT_ID"]},
        iat={"essential": True},
        exp={"essential": True},
        jti={"essential": True},
    )
    claims = token.claims
    try:
        registry.validate(claims)
    except ClaimError as exc:
        raise _claims_refused(exc) from exc
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(BACKCHANNEL_LOGOUT_EVENT), dict):
        raise TokenRefused("it carries no back-channel logout event")
    if "nonce" in claims:
        raise TokenRefused("it carries a nonce, as only ID tokens do")
    sub, sid = claims.get("sub"), claims.get("sid")
    if not (sub or sid) or not all(isinstance(v, str) for v in (sub, sid) if v is not None):
        raise TokenRefused("it names neither a subject nor a session")
    return dict(claims)
