"""Single sign-on against a real OpenID Connect provider process (oidc-provider-mock): the
registry's Authlib client talks to it over HTTP for discovery, keys, tokens and userinfo.

The browser's part (following redirects, picking a person on the provider's page) is played here
by the test client and urllib; tests/browser/test_browser_security.py does it in Chromium.
"""

import json
import re
import urllib.parse
import urllib.request

import requests
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.auth.models import Role, User
from registry.extensions import db
from tests import builders
from tests.conftest import OIDC_PEOPLE, FreshContextClient


def pick_at_provider(authorize_url: str, sub: str) -> str:
    """Sign in at the provider as ``sub``: the address it sends the browser back to."""
    response = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10)
    assert response.status_code == 302, response.text[:500]
    return response.headers["Location"]


def sso_sign_in(client, person: dict, next_path: str | None = None):
    start = client.get("/login/oidc", query_string={"next": next_path} if next_path else None)
    assert start.status_code == 302
    authorize_url = start.headers["Location"]
    back = urllib.parse.urlsplit(pick_at_provider(authorize_url, person["sub"]))
    return client.get(f"{back.path}?{back.query}"), authorize_url


def test_a_super_admin_signs_in_through_the_provider_with_the_role_from_the_claim(oidc_app, client):
    ada = OIDC_PEOPLE["ada"]
    response, authorize_url = sso_sign_in(client, ada, next_path="/history")

    query = urllib.parse.parse_qs(urllib.parse.urlsplit(authorize_url).query)
    # Authorization code with PKCE and a nonce, back to the registry's public address.
    assert query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["nonce"][0] and query["state"][0]
    assert query["redirect_uri"] == ["https://registry.example.test/login/oidc/callback"]
    assert set(query["scope"][0].split()) == {"openid", "email", "profile"}

    assert response.status_code == 303 and response.headers["Location"] == "/history"
    user = db.session.scalar(select(User).where(User.external_subject == ada["sub"]))
    assert (user.email, user.name, user.role) == (ada["email"], "Ada Admin", Role.SUPER_ADMIN)
    assert user.password_hash is None
    assert client.get("/admin/queue").status_code == 200
    events = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert events == ["user_created", "sign_in"]


def test_everyone_else_is_a_product_team_member_and_found_again_by_subject(oidc_app, client):
    tom = OIDC_PEOPLE["tom"]
    sso_sign_in(client, tom)
    assert client.get("/admin/queue").status_code == 403
    assert client.get("/products").status_code == 200
    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})

    sso_sign_in(client, tom)
    users = db.session.scalars(select(User).where(User.email == tom["email"])).all()
    assert len(users) == 1 and users[0].role == Role.USER


def test_a_role_taken_away_at_the_provider_is_taken_away_here_and_ends_old_sessions(
    oidc_app, app, oidc_provider
):
    sue = OIDC_PEOPLE["sue"]
    app.test_client_class = FreshContextClient
    laptop, phone = app.test_client(), app.test_client()
    sso_sign_in(laptop, sue)
    sso_sign_in(phone, sue)
    assert laptop.get("/history").status_code == 200

    oidc_provider.set_claims({**sue, "roles": []})
    sso_sign_in(phone, sue)

    assert phone.get("/history").status_code == 403  # a product team member now
    assert laptop.get("/history").status_code == 302  # the support session made before ended
    change = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "role_changed"))
    assert change.target == sue["email"] and "support → user" in change.detail


def test_an_account_made_before_is_linked_by_verified_email_not_by_an_unverified_one(
    oidc_app, client, oidc_provider
):
    ada = OIDC_PEOPLE["ada"]
    builders.make_user(Role.USER, email=ada["email"], name="Ada From Before")
    oidc_provider.set_claims({**ada, "email_verified": False})
    response, _ = sso_sign_in(client, ada)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/products").status_code == 302
    assert "has not verified" in client.get("/login").get_data(as_text=True)

    oidc_provider.set_claims(ada)
    sso_sign_in(client, ada)
    [user] = db.session.scalars(select(User).where(User.email == ada["email"])).all()
    assert user.external_subject == ada["sub"] and user.role == Role.SUPER_ADMIN


def test_a_deactivated_account_cannot_sign_in_through_the_provider(oidc_app, client, runner):
    tom = OIDC_PEOPLE["tom"]
    sso_sign_in(client, tom)
    assert runner.invoke(args=["users", "deactivate", tom["email"]]).exit_code == 0
    assert client.get("/products").status_code == 302  # the session ended at once

    response, _ = sso_sign_in(client, tom)
    assert response.headers["Location"] == "/login"
    assert "deactivated" in client.get("/login").get_data(as_text=True)


def test_a_forged_state_or_code_signs_nobody_in(oidc_app, client):
    start = client.get("/login/oidc")
    state = urllib.parse.parse_qs(urllib.parse.urlsplit(start.headers["Location"]).query)["state"]

    # A state this browser never got is no sign-in it started: refused, and nothing recorded
    # (anyone can send this address anything).
    response = client.get("/login/oidc/callback?code=made-up&state=made-up")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/products").status_code == 302
    failed = select(AuditEvent).where(AuditEvent.action == "sign_in_failed")
    assert db.session.scalar(failed) is None

    # Its own state with a made-up code: the provider refuses the code, and that is recorded.
    response = client.get(f"/login/oidc/callback?code=made-up&state={state[0]}")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/products").status_code == 302
    assert db.session.scalar(failed).detail == (
        "the identity provider answered invalid_grant at the token endpoint"
    )
    assert "Sign-in did not work" in client.get("/login").get_data(as_text=True)


def test_signing_out_ends_the_providers_session_too(oidc_app, client, oidc_provider):
    sso_sign_in(client, OIDC_PEOPLE["tom"])
    response = client.post("/logout", data={"csrf_token": builders.csrf_token(client)})
    assert response.status_code == 303
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}" == oidc_provider.url
    assert location.path == "/oauth2/end_session"
    query = urllib.parse.parse_qs(location.query)
    assert query["post_logout_redirect_uri"] == ["https://registry.example.test/login"]
    assert query["id_token_hint"][0].count(".") == 2  # the ID token (a JWT)
    # The provider's page takes it from there.
    with urllib.request.urlopen(response.headers["Location"], timeout=10) as page:  # noqa: S310
        assert page.status == 200


def test_the_sign_in_page_offers_the_provider_and_production_hides_passwords(oidc_app, client):
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with your organization" in page and 'name="password"' in page

    oidc_app.config["PASSWORD_LOGIN"] = False
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with" in page and 'name="password"' not in page
    tom = db.session.scalar(select(User).where(User.email == "nobody@example.com"))
    assert tom is None
    refused = client.post(
        "/login",
        data={"email": "a@example.com", "password": "x", "csrf_token": builders.csrf_token(client)},
    )
    assert refused.status_code == 404


def test_the_discovery_document_is_the_providers(oidc_provider):
    with urllib.request.urlopen(oidc_provider.discovery_url, timeout=10) as response:  # noqa: S310
        document = json.load(response)
    assert re.match(r"http://127\.0\.0\.1:\d+$", document["issuer"])
    assert document["end_session_endpoint"].endswith("/oauth2/end_session")
