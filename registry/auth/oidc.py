"""Sign-in with the organization's identity provider over OpenID Connect (Authlib).

Authorization code with PKCE (S256) and a nonce; Authlib reads the provider's discovery document
and its keys (JWKS). Its answer is checked in ``oidc_answer``, the ID token's signature,
algorithm, issuer, audience, expiry and nonce in ``id_tokens``; the tokens are kept on the
server (``provider_sessions``), which also asks the provider again during the session.
The role comes from a claim (``OIDC_ROLES_CLAIM``) on every sign-in: the provider is the source
of truth, and a change of role there ends the user's other sessions here.
"""

from urllib.parse import urlencode

from authlib.integrations.flask_client import OAuth
from flask import current_app
from sqlalchemy import select

from ..audit import services as audit
from ..extensions import db
from . import services
from .models import Role, User

CLIENT = "oidc"


class SignInRefused(Exception):
    """The provider vouched for someone the registry will not let in; the message says why."""


def init_app(app) -> None:
    if not app.config["OIDC_DISCOVERY_URL"]:
        return
    oauth = OAuth(app)
    oauth.register(
        CLIENT,
        server_metadata_url=app.config["OIDC_DISCOVERY_URL"],
        client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config["OIDC_CLIENT_SECRET"],
        client_kwargs={
            "scope": app.config["OIDC_SCOPES"],
            "code_challenge_method": "S256",
            # No call to the provider may hold a worker for ever.
            "default_timeout": app.config["OIDC_TIMEOUT_SECONDS"],
        },
    )
    app.extensions["registry_oidc"] = oauth


def enabled() -> bool:
    return "registry_oidc" in current_app.extensions


def client():
    return getattr(current_app.extensions["registry_oidc"], CLIENT)


def redirect_uri() -> str:
    """The callback the provider sends the browser back to: register this one with it."""
    return current_app.config["PUBLIC_URL"].rstrip("/") + "/login/oidc/callback"


def end_session_url(id_token: str | None) -> str | None:
    """The provider's RP-initiated logout address, if it offers one."""

    endpoint = client().load_server_metadata().get("end_session_endpoint")
    if not endpoint:
        return None
    params = {
        "post_logout_redirect_uri": current_app.config["PUBLIC_URL"].rstrip("/") + "/login",
        "client_id": current_app.config["OIDC_CLIENT_ID"],
    }
    if id_token:
        params["id_token_hint"] = id_token
    return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)


def claim(claims: dict, path: str):
    """The value at a dotted path (``realm_access.roles``), or None."""
    value = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def role_from(claims: dict) -> Role:
    values = claim(claims, current_app.config["OIDC_ROLES_CLAIM"])
    if isinstance(values, str):
        values = values.replace(",", " ").split()
    values = {str(v) for v in values} if isinstance(values, list) else set()
    # Keycloak group paths come as "/registry-super-admin": compare names either way.
    values |= {v.lstrip("/") for v in values}
    if values & set(current_app.config["OIDC_SUPER_ADMIN_ROLES"]):
        return Role.SUPER_ADMIN
    if values & set(current_app.config["OIDC_SUPPORT_ROLES"]):
        return Role.SUPPORT
    return Role.USER


def display_name(claims: dict, email: str) -> str:
    name = claims.get("name") or " ".join(
        str(claims[k]) for k in ("given_name", "family_name") if claims.get(k)
    )
    return (str(name).strip() or email)[:120]


def user_for(claims: dict) -> User:
    """The registry's user for the provider's claims: found by subject, else by a verified
    email (an account made before single sign-on), else made now from a verified email.
    Flushes; the caller commits.

    Access follows the email (the products that name it as a contact), so an email the provider
    has not verified never makes an account, links one, or changes one's address: anyone may
    type any address into a provider's profile."""
    subject = str(claims.get("sub") or "")
    email = services.normalise_email(str(claims.get("email") or ""))
    if not subject:
        raise SignInRefused("The identity provider sent no subject.")
    if not email or "@" not in email:
        raise SignInRefused(
            "The identity provider did not share your email address, which the registry needs."
        )
    verified = claims.get("email_verified") is True
    role = role_from(claims)
    user = db.session.scalar(select(User).where(User.external_subject == subject))
    if user is None:
        if not verified:
            raise SignInRefused(
                f"The identity provider has not verified {email}, so the registry cannot make "
                "or link an account for it. Verify your address with the identity provider, "
                "then sign in again."
            )
        user = services.get_by_email(email)
        if user is not None:
            if user.external_subject:
                raise SignInRefused(
                    f"{email} is linked to another identity; ask a registry administrator."
                )
            user.external_subject = subject
        else:
            user = services.create_user(email, display_name(claims, email), None, role)
            user.external_subject = subject
            audit.record(
                "user_created", actor=user, target=email, detail=f"{role.value} (single sign-on)"
            )
    elif user.email != email and verified and services.get_by_email(email) is None:
        # The address changed at the provider, which vouches for the new one.
        services.change_email(user, email, why="(from the identity provider)")
    if not user.is_active:
        raise SignInRefused("Your registry account is deactivated; ask a registry administrator.")
    user.name = display_name(claims, email if user.email == email else user.email)
    services.change_role(user, role, why="(from the identity provider)")
    db.session.flush()
    return user


def claims_of(token: dict) -> dict:
    """The ID token's claims, with the userinfo endpoint's added when the role claim is not in
    the ID token (Keycloak puts roles in the access token and userinfo unless mapped)."""
    claims = dict(token.get("userinfo") or {})
    if claim(claims, current_app.config["OIDC_ROLES_CLAIM"]) is None or "email" not in claims:
        metadata = client().load_server_metadata()
        if metadata.get("userinfo_endpoint"):
            info = client().userinfo(token=token)
            if info.get("sub") == claims.get("sub"):
                claims = {**info, **claims}
    return claims
