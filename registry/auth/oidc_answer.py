"""The identity provider's answer to a sign-in (the callback), checked step by step.

These are the steps of Authlib's ``authorize_access_token``, taken apart so that each way the
answer can fail becomes a ``SignInFailed`` with a message of ours for the page and a short
reason of ours for the audit log (never the provider's words, never a 500), and so that an ID
token whose signature does not verify is checked again with freshly fetched keys
(``id_tokens``) without exchanging the code twice.

An answer that carries no state this browser's session holds is no sign-in this browser
started: anyone can send such a request, so it is refused without writing to the audit log.
"""

import logging
from dataclasses import dataclass

import requests
from authlib.integrations.base_client import OAuthError
from flask import request, session

from . import id_tokens, oidc

log = logging.getLogger(__name__)

GENERIC = "Sign-in did not work. Try again; if it keeps failing, contact the platform team."
NOT_STARTED_HERE = (
    "Sign-in did not work: it was not started from this browser, or it took too long. Try again."
)
UNREACHABLE = "The identity provider cannot be reached right now. Try again in a few minutes."

# The error codes of an authorization answer (OAuth 2.0, OpenID Connect) in our own words.
AUTHORIZATION_ERRORS = {
    "access_denied": "The identity provider did not let you into the registry, or you said no "
    "there. If you need access, ask the platform team.",
    "login_required": "The identity provider needs you to sign in there first. Try again.",
    "interaction_required": "The identity provider needs you to sign in there first. Try again.",
    "consent_required": "The identity provider needs your consent before the registry may use "
    "your account. Try again and accept.",
    "account_selection_required": "Choose an account at the identity provider, then try again.",
    "temporarily_unavailable": UNREACHABLE,
    "server_error": UNREACHABLE,
}
# The error codes of a token endpoint's refusal (RFC 6749, 5.2), named in the audit log.
TOKEN_ERRORS = {
    "invalid_request",
    "invalid_client",
    "invalid_grant",
    "unauthorized_client",
    "unsupported_grant_type",
    "invalid_scope",
}


class NotStartedHere(Exception):
    """The callback answers no sign-in this browser started: nothing is recorded. ``message``
    is for the person (our words for a known error code, so someone who said no at a provider
    that leaves the state out of its error answer still reads why)."""

    def __init__(self, message: str = NOT_STARTED_HERE):
        super().__init__(message)
        self.message = message


class SignInFailed(Exception):
    """A sign-in that failed: ``message`` for the person, ``reason`` for the audit log."""

    def __init__(self, message: str, reason: str):
        super().__init__(reason)
        self.message = message
        self.reason = reason


@dataclass
class Answer:
    claims: dict  # the ID token's, with userinfo's where the ID token lacks the role or email
    id_token: str
    access_token: str
    refresh_token: str | None


def _take_state() -> dict | None:
    """The data Authlib kept in this session for the answer's state, taken once; None when this
    browser started no sign-in with that state."""
    state = request.args.get("state")
    framework = oidc.client().framework
    data = framework.get_state_data(session, state) if state else None
    if not isinstance(data, dict):
        return None
    framework.clear_state_data(session, state)
    return data


def _provider_failure(exc: Exception, step: str) -> SignInFailed:
    log.warning("Single sign-on failed at %s: %r", step, exc)
    if isinstance(exc, OAuthError):
        error = exc.error if exc.error in TOKEN_ERRORS else "an error"
        return SignInFailed(GENERIC, f"the identity provider answered {error} at {step}")
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return SignInFailed(
            UNREACHABLE,
            f"the identity provider answered HTTP {exc.response.status_code} at {step}",
        )
    if isinstance(exc, requests.RequestException):
        return SignInFailed(UNREACHABLE, f"the identity provider could not be reached at {step}")
    return SignInFailed(GENERIC, f"the identity provider's answer at {step} was malformed")


# What a provider's answer can raise: Authlib's OAuth errors, the HTTP client's, ValueError,
# KeyError or TypeError from a body that is not the JSON object it should be, and Authlib's
# RuntimeError for an address its discovery document lacks.
PROVIDER_ERRORS = (
    OAuthError,
    requests.RequestException,
    ValueError,
    KeyError,
    TypeError,
    RuntimeError,
)


def finish() -> Answer:
    """Check the provider's answer to the sign-in this browser started and exchange its code.
    Raises NotStartedHere (record nothing) or SignInFailed (record it)."""
    state = _take_state()
    error = request.args.get("error")
    if error is not None:
        message = AUTHORIZATION_ERRORS.get(error, GENERIC)
        if state is None:
            raise NotStartedHere(message)
        known = error if error in AUTHORIZATION_ERRORS else "an unknown error"
        raise SignInFailed(message, f"the identity provider answered {known} instead of signing in")
    if state is None:
        raise NotStartedHere
    code = request.args.get("code")
    nonce = state.get("nonce")
    if not code or not nonce:
        raise SignInFailed(GENERIC, "the identity provider's answer had no code")
    try:
        tokens = oidc.client().fetch_access_token(
            code=code,
            state=request.args.get("state"),
            code_verifier=state.get("code_verifier"),
            redirect_uri=state.get("redirect_uri"),
        )
    except PROVIDER_ERRORS as exc:
        raise _provider_failure(exc, "the token endpoint") from exc
    id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
    refresh_token = tokens.get("refresh_token")
    if not isinstance(access_token, str) or not access_token:
        raise SignInFailed(GENERIC, "the token endpoint sent no access token")
    if id_token is None:
        raise SignInFailed(GENERIC, "the token endpoint sent no ID token")
    try:
        id_claims = id_tokens.id_token_claims(id_token, nonce=nonce, access_token=access_token)
    except id_tokens.TokenRefused as exc:
        log.warning("Single sign-on refused an ID token: %s", exc)
        raise SignInFailed(GENERIC, f"ID token refused: {exc}") from exc
    except requests.RequestException as exc:
        raise _provider_failure(exc, "the keys endpoint") from exc
    try:
        claims = oidc.claims_of({**tokens, "userinfo": id_claims})
    except PROVIDER_ERRORS as exc:
        raise _provider_failure(exc, "the userinfo endpoint") from exc
    return Answer(
        claims=claims,
        id_token=id_token,
        access_token=access_token,
        refresh_token=refresh_token if isinstance(refresh_token, str) else None,
    )
