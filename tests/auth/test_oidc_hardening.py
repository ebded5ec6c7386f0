"""Single sign-on under attack and when things go wrong: every failed sign-in is a page and an
audit row of our own words, never a 500; a key rotated at the provider; answers no browser
asked for; roles and accounts changed at the provider during a session; back-channel logout;
and the provider's tokens kept on the server, never in the cookie.

Most run against tests/scripted_provider.py, a small provider over real HTTP whose keys and
answers a test controls; the re-checks also run against oidc-provider-mock, a provider written
by others (tests/conftest.py).
"""

import threading
import time
import urllib.parse
from datetime import timedelta

import pytest
import requests
from joserfc.jwk import RSAKey
from sqlalchemy import select

from registry import security
from registry.audit.models import AuditEvent
from registry.auth import oidc, provider_sessions
from registry.auth.models import ProviderSession, Role, User
from registry.extensions import db
from tests import builders
from tests.auth.test_oidc import sso_sign_in
from tests.conftest import OIDC_PEOPLE, FreshContextClient, free_port
from tests.scripted_provider import BACKCHANNEL_EVENT, ScriptedProvider, unsigned

TOM, SUE, ADA = OIDC_PEOPLE["tom"], OIDC_PEOPLE["sue"], OIDC_PEOPLE["ada"]
BACKCHANNEL = "/login/oidc/backchannel-logout"


@pytest.fixture(scope="session")
def scripted_provider():
    provider = ScriptedProvider()
    yield provider
    provider.stop()


@pytest.fixture
def scripted(scripted_provider):
    scripted_provider.reset()
    scripted_provider.disabled.clear()
    for person in OIDC_PEOPLE.values():
        scripted_provider.add(person)
    return scripted_provider


@pytest.fixture
def mock_app(oidc_app):
    """The test app signing in through oidc-provider-mock, each request in its own context."""
    oidc_app.test_client_class = FreshContextClient
    return oidc_app


@pytest.fixture
def scripted_app(app, scripted):
    """The test app signing in through the scripted provider."""
    app.config.update(
        OIDC_DISCOVERY_URL=scripted.discovery_url,
        OIDC_CLIENT_ID=scripted.client_id,
        OIDC_CLIENT_SECRET=scripted.client_secret,
    )
    oidc.init_app(app)
    security.configure_headers(app)
    app.test_client_class = FreshContextClient
    return app


def provider_answer(client, provider: ScriptedProvider, person: dict | None = None) -> str:
    """Start a sign-in and let the provider answer: the callback address it sends back."""
    provider.person = person or TOM
    start = client.get("/login/oidc")
    assert start.status_code == 302, start.get_data(as_text=True)
    answer = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    back = urllib.parse.urlsplit(answer.headers["Location"])
    return f"{back.path}?{back.query}"


def sign_in(client, provider: ScriptedProvider, person: dict | None = None):
    """A whole sign-in through the scripted provider: the registry's answer to the callback."""
    return client.get(provider_answer(client, provider, person))


def signed_in(client) -> bool:
    return client.get("/products").status_code == 200


def events(action: str) -> list[AuditEvent]:
    db.session.expire_all()
    return db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    ).all()


def rows() -> list[ProviderSession]:
    db.session.expire_all()
    return db.session.scalars(select(ProviderSession).order_by(ProviderSession.id)).all()


def age_checks(seconds: int = 301) -> None:
    """As if the provider was last asked about every session ``seconds`` ago."""
    for row in rows():
        row.checked_at -= timedelta(seconds=seconds)
    db.session.commit()


# 1. Every refused ID token and every failure at the provider: a page and an audit row.

NOW = int(time.time())
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "signing-1"})  # the provider's kid


def _spoil(provider: ScriptedProvider, how: str) -> None:
    now = int(time.time())
    spoilers = {
        "nonce": lambda: provider.id_token_claims.update(nonce="another-sign-in"),
        "audience": lambda: provider.id_token_claims.update(aud="another-client"),
        # Authlib's own check takes a token for another audience whose azp names this client.
        "audience-with-azp": lambda: provider.id_token_claims.update(
            aud="another-client", azp=provider.client_id
        ),
        "issuer": lambda: provider.id_token_claims.update(iss="https://evil.example"),
        "expired": lambda: provider.id_token_claims.update(exp=now - 600, iat=now - 900),
        "no-subject": lambda: provider.id_token_claims.update(sub=None),
        "wrong-key": lambda: setattr(provider, "sign_with", OTHER_KEY),
    }
    if how in spoilers:
        spoilers[how]()
    elif how == "alg-none":
        # Even when the discovery document lists "none".
        provider.advertised_algorithms = ["RS256", "none"]
        provider.unsigned_id_token = True
    elif how == "hs256-client-secret":
        provider.advertised_algorithms = ["RS256", "HS256"]
        provider.sign_with = provider.hmac_key()
        provider.id_token_header = {"alg": "HS256", "kid": None}


@pytest.mark.parametrize(
    ("how", "reason"),
    [
        ("nonce", "ID token refused: its nonce is not this sign-in's"),
        ("audience", "ID token refused: it was issued to another client"),
        ("audience-with-azp", "ID token refused: it was issued to another client"),
        ("issuer", "ID token refused: it was issued by another issuer"),
        ("expired", "ID token refused: it has expired"),
        ("no-subject", "ID token refused: it has no 'sub' claim"),
        ("alg-none", "ID token refused: it is signed with an algorithm the registry refuses"),
        (
            "hs256-client-secret",
            "ID token refused: it is signed with an algorithm the registry refuses",
        ),
        ("wrong-key", "ID token refused: its signature is not the identity provider's"),
    ],
)
def test_a_refused_id_token_is_a_page_and_an_audit_row(scripted_app, scripted, client, how, reason):
    _spoil(scripted, how)
    response = sign_in(client, scripted)

    assert response.status_code == 302 and response.headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert "Sign-in did not work. Try again" in page
    assert not signed_in(client)
    [failed] = events("sign_in_failed")
    assert (failed.actor, failed.detail) == ("single sign-on", reason)
    assert events("sign_in") == [] and rows() == []
    assert db.session.scalar(select(User).where(User.external_subject == TOM["sub"])) is None


@pytest.mark.parametrize(
    ("answer", "message", "reason"),
    [
        (
            (400, '{"error": "invalid_grant", "error_description": "<b>Call 555-0100</b>"}'),
            "Sign-in did not work. Try again",
            "the identity provider answered invalid_grant at the token endpoint",
        ),
        (
            (400, '{"error": "made_up_error"}'),
            "Sign-in did not work. Try again",
            "the identity provider answered an error at the token endpoint",
        ),
        (
            (502, "<html>Bad gateway</html>"),
            "The identity provider cannot be reached right now",
            "the identity provider answered HTTP 502 at the token endpoint",
        ),
        (
            (200, "this is not JSON"),
            "Sign-in did not work. Try again",
            "the identity provider's answer at the token endpoint was malformed",
        ),
        (
            (200, '["a list"]'),
            "Sign-in did not work. Try again",
            "the identity provider's answer at the token endpoint was malformed",
        ),
        (
            (200, '{"token_type": "Bearer", "id_token": "a.b.c"}'),
            "Sign-in did not work. Try again",
            "the token endpoint sent no access token",
        ),
        (
            (200, '{"access_token": "at", "token_type": "Bearer"}'),
            "Sign-in did not work. Try again",
            "the token endpoint sent no ID token",
        ),
        (
            (200, '{"access_token": "at", "token_type": "Bearer", "id_token": 5}'),
            "Sign-in did not work. Try again",
            "ID token refused: it is not a signed token",
        ),
        (
            (200, '{"access_token": "at", "token_type": "Bearer", "id_token": "a.b.c"}'),
            "Sign-in did not work. Try again",
            "ID token refused: it is malformed",
        ),
    ],
)
def test_a_bad_answer_at_the_token_endpoint_is_a_page_and_an_audit_row(
    scripted_app, scripted, client, answer, message, reason
):
    scripted.token_answer = answer
    response = sign_in(client, scripted)

    assert response.status_code == 302 and response.headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert message in page and "555-0100" not in page
    assert [e.detail for e in events("sign_in_failed")] == [reason]
    assert not signed_in(client)


def test_a_token_endpoint_that_cannot_be_reached_is_a_page_and_an_audit_row(
    scripted_app, scripted, client
):
    scripted.token_endpoint = f"http://127.0.0.1:{free_port()}/token"  # nothing listens there
    response = sign_in(client, scripted)

    assert response.headers["Location"] == "/login"
    assert "cannot be reached right now" in client.get("/login").get_data(as_text=True)
    assert [e.detail for e in events("sign_in_failed")] == [
        "the identity provider could not be reached at the token endpoint"
    ]


@pytest.mark.own_app  # single sign-on set up on it
def test_a_provider_that_cannot_be_reached_at_the_start_is_a_page(app, client):
    app.config.update(
        OIDC_DISCOVERY_URL=f"http://127.0.0.1:{free_port()}/.well-known/openid-configuration",
        OIDC_CLIENT_ID="registry",
    )
    oidc.init_app(app)
    response = client.get("/login/oidc")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "cannot be reached right now" in client.get("/login").get_data(as_text=True)


# 2. A signing key rotated at the provider under the same key id.


def test_a_key_rotated_under_the_same_kid_is_fetched_again_once(scripted_app, scripted, client):
    assert sign_in(client, scripted).status_code == 303
    assert scripted.hits["/jwks"] == 1
    builders.post(client, "/logout")

    old = scripted.key
    new = scripted.rotate_key(same_kid=True)
    assert new.kid == old.kid and new.as_dict() != old.as_dict()

    response = sign_in(client, scripted)
    assert response.status_code == 303, events("sign_in_failed")
    assert signed_in(client)
    assert scripted.hits["/jwks"] == 2  # fetched again once, for the token that did not verify
    builders.post(client, "/logout")
    assert sign_in(client, scripted).status_code == 303
    assert scripted.hits["/jwks"] == 2  # and kept


def test_a_key_under_a_new_kid_is_fetched_too(scripted_app, scripted, client):
    assert sign_in(client, scripted).status_code == 303
    builders.post(client, "/logout")
    scripted.rotate_key(same_kid=False)
    assert sign_in(client, scripted).status_code == 303
    assert scripted.hits["/jwks"] == 2


# 3. An error answer: recorded only for a sign-in this browser started, never in its words.


def test_an_error_answer_no_browser_asked_for_records_nothing_and_shows_nothing_of_it(
    scripted_app, client
):
    for _ in range(3):
        response = client.get(
            "/login/oidc/callback",
            query_string={
                "error": "access_denied",
                "error_description": "Your account is locked: call 555-0100 now",
            },
        )
        assert response.status_code == 302 and response.headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert "did not let you into the registry" in page and "555-0100" not in page

    client.get("/login/oidc")  # a sign-in started, but the answer names another state
    client.get(
        "/login/oidc/callback",
        query_string={"error": "<b>made-up</b>", "error_description": "555-0100", "state": "x"},
    )
    page = client.get("/login").get_data(as_text=True)
    assert "Sign-in did not work. Try again" in page
    assert "555-0100" not in page and "made-up" not in page
    client.get("/login/oidc/callback", query_string={"code": "made-up", "state": "x"})
    assert "not started from this browser" in client.get("/login").get_data(as_text=True)
    assert events("sign_in_failed") == []


@pytest.mark.parametrize(
    ("error", "words", "reason"),
    [
        (
            "access_denied",
            "The identity provider did not let you into the registry",
            "the identity provider answered access_denied instead of signing in",
        ),
        (
            "login_required",
            "needs you to sign in there first",
            "the identity provider answered login_required instead of signing in",
        ),
        (
            "made_up_<script>",
            "Sign-in did not work. Try again",
            "the identity provider answered an unknown error instead of signing in",
        ),
    ],
)
def test_an_error_answer_to_this_browsers_sign_in_is_recorded_in_our_words(
    scripted_app, scripted, client, error, words, reason
):
    scripted.authorize_error = (error, "Your account is locked: call 555-0100 now")
    callback = provider_answer(client, scripted)
    response = client.get(callback)
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    page = client.get("/login").get_data(as_text=True)
    assert words in page and "555-0100" not in page and "made_up" not in page
    assert [e.detail for e in events("sign_in_failed")] == [reason]

    # The same answer again is no sign-in this browser started any more: nothing more recorded.
    assert client.get(callback).status_code == 302
    assert len(events("sign_in_failed")) == 1


def test_the_providers_own_deny_button_is_shown_in_our_words(mock_app, client):
    start = client.get("/login/oidc")
    denied = requests.post(
        start.headers["Location"], data={"action": "deny"}, allow_redirects=False, timeout=10
    )
    back = urllib.parse.urlsplit(denied.headers["Location"])
    query = urllib.parse.parse_qs(back.query)
    assert query["error"] == ["access_denied"] and query["error_description"]
    # This provider leaves the state out of its error answer: not recorded, as anyone could
    # send the same, but the person reads why in our words.
    assert "state" not in query
    client.get(f"{back.path}?{back.query}")
    page = client.get("/login").get_data(as_text=True)
    assert "did not let you into the registry" in page
    assert query["error_description"][0] not in page
    assert events("sign_in_failed") == []


# 4. The provider asked again during a session, every OIDC_RECHECK_SECONDS.


def test_a_role_taken_away_at_the_provider_applies_within_the_interval(
    mock_app, client, oidc_provider
):
    sso_sign_in(client, SUE)
    assert client.get("/history").status_code == 200

    oidc_provider.set_claims({**SUE, "roles": []})
    assert client.get("/history").status_code == 200  # not asked again yet

    age_checks()
    assert client.get("/history").status_code == 403  # asked: a product team member now
    assert signed_in(client)  # and still signed in, as what the provider now says
    [change] = events("role_changed")
    assert change.detail == "support → user (from the identity provider, during a session)"


def test_a_role_given_at_the_provider_applies_and_ends_the_other_sessions(
    mock_app, app, oidc_provider
):
    laptop, phone = app.test_client(), app.test_client()
    sso_sign_in(laptop, TOM)
    sso_sign_in(phone, TOM)
    oidc_provider.set_claims({**TOM, "roles": ["registry-super-admin"]})
    age_checks()

    assert laptop.get("/admin/queue").status_code == 200
    assert phone.get("/products").status_code == 302  # made under the old role


def test_a_grant_revoked_at_the_provider_ends_the_session(mock_app, client, oidc_provider):
    sso_sign_in(client, TOM)
    revoked = requests.post(f"{oidc_provider.url}/users/{TOM['sub']}/revoke-tokens", timeout=10)
    assert revoked.status_code == 204
    assert signed_in(client)  # not asked again yet

    age_checks()
    response = client.get("/products")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "has ended. Sign in again." in client.get("/login").get_data(as_text=True)
    [ended] = events("session_ended")
    assert (ended.actor, ended.target, ended.detail) == (
        "identity provider",
        TOM["email"],
        "the identity provider refused to refresh the session",
    )
    assert rows() == []
    assert sso_sign_in(client, TOM)[0].status_code == 303  # a new sign-in is a new grant


def test_a_disabled_account_ends_the_session_through_refresh_or_userinfo(
    scripted_app, scripted, app
):
    with_refresh, without_refresh = app.test_client(), app.test_client()
    sign_in(with_refresh, scripted)
    scripted.issue_refresh_tokens = False
    sign_in(without_refresh, scripted)
    scripted.disable(TOM["sub"])
    age_checks()

    assert not signed_in(with_refresh)
    assert not signed_in(without_refresh)
    assert sorted(e.detail for e in events("session_ended")) == [
        "the identity provider refused the session's access token",
        "the identity provider refused to refresh the session",
    ]


def test_the_provider_is_asked_only_when_the_last_check_is_older_than_the_interval(
    scripted_app, scripted, client
):
    sign_in(client, scripted)
    asked = (scripted.hits.get("/token", 0), scripted.hits.get("/userinfo", 0))
    assert asked == (1, 0)  # the code's exchange; the ID token had the role and email
    for _ in range(5):
        assert signed_in(client)
    assert (scripted.hits.get("/token", 0), scripted.hits.get("/userinfo", 0)) == asked

    age_checks(299)
    assert signed_in(client)
    assert (scripted.hits.get("/token", 0), scripted.hits.get("/userinfo", 0)) == asked

    age_checks(2)
    assert signed_in(client)
    assert (scripted.hits["/token"], scripted.hits["/userinfo"]) == (2, 1)
    for _ in range(5):
        assert signed_in(client)
    assert (scripted.hits["/token"], scripted.hits["/userinfo"]) == (2, 1)


def test_one_request_of_a_session_asks_the_provider_at_a_time(scripted_app, scripted, app):
    first = app.test_client()
    sign_in(first, scripted)
    second = app.test_client()
    second.set_cookie("session", first.get_cookie("session").value, domain="localhost")
    age_checks()
    scripted.refresh_gate = threading.Event()  # the refresh grant waits until told

    answers = {}
    waiting = threading.Thread(target=lambda: answers.update(first=first.get("/products")))
    waiting.start()
    deadline = time.monotonic() + 10
    while scripted.hits.get("/token", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert scripted.hits["/token"] == 2  # the first request is refreshing

    assert second.get("/products").status_code == 200  # goes on with what was known
    assert scripted.hits["/token"] == 2  # without refreshing (the token is single-use)
    scripted.refresh_gate.set()
    waiting.join(10)
    assert answers["first"].status_code == 200
    assert signed_in(first) and signed_in(second)
    assert events("session_ended") == []


def test_requests_that_find_a_check_due_at_once_ask_the_provider_once(
    scripted_app, scripted, app, monkeypatch
):
    first = app.test_client()
    sign_in(first, scripted)
    second = app.test_client()
    second.set_cookie("session", first.get_cookie("session").value, domain="localhost")
    age_checks()
    # Both requests read the session's row before either goes on: the race a page's polling
    # and a click make every day.
    both_read = threading.Barrier(2, timeout=10)
    read = provider_sessions._current

    def read_then_wait():
        row = read()
        both_read.wait()
        return row

    monkeypatch.setattr(provider_sessions, "_current", read_then_wait)
    answers = {}
    threads = [
        threading.Thread(target=lambda c=c, n=n: answers.update({n: c.get("/products")}))
        for n, c in (("first", first), ("second", second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)

    assert [answers[n].status_code for n in ("first", "second")] == [200, 200]
    assert scripted.hits["/token"] == 2  # one refresh (refresh tokens are single-use there)
    assert events("session_ended") == []
    monkeypatch.undo()
    assert signed_in(first) and signed_in(second)


def test_a_refreshed_id_token_for_another_subject_ends_the_session(scripted_app, scripted, client):
    sign_in(client, scripted)
    scripted.id_token_on_refresh = True
    scripted.id_token_claims = {"sub": ADA["sub"]}
    age_checks()
    assert not signed_in(client)
    assert [e.detail for e in events("session_ended")] == [
        "the refreshed ID token was refused: its subject is not the one signed in"
    ]


def test_a_role_in_a_refreshed_id_token_applies(scripted_app, scripted, client):
    sign_in(client, scripted, ADA)
    assert client.get("/admin/queue").status_code == 200
    scripted.id_token_on_refresh = True
    scripted.people[ADA["sub"]]["roles"] = []
    age_checks()
    assert client.get("/admin/queue").status_code == 403
    assert signed_in(client)
    user = db.session.scalar(select(User).where(User.external_subject == ADA["sub"]))
    assert user.role == Role.USER
    [row] = rows()
    assert row.id_token == scripted.last_id_token  # the refreshed one, for the sign-out's hint


def test_a_provider_that_is_down_does_not_end_sessions(scripted_app, scripted, client):
    sign_in(client, scripted)
    scripted.token_answer = (503, "down for maintenance")
    age_checks()
    assert signed_in(client)
    assert events("session_ended") == []
    assert scripted.hits["/token"] == 2
    assert signed_in(client)
    assert scripted.hits["/token"] == 2  # asked again only an interval later


# Back-channel logout: the provider ends a session, or every session of a person.


def test_a_logout_token_for_a_session_ends_that_session_only(scripted_app, scripted, app):
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, scripted)
    sign_in(phone, scripted)
    laptop_row, phone_row = rows()
    assert laptop_row.provider_sid != phone_row.provider_sid

    token = scripted.logout_token(sub=TOM["sub"], sid=laptop_row.provider_sid)
    response = app.test_client().post(BACKCHANNEL, data={"logout_token": token})

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert not signed_in(laptop)
    assert signed_in(phone)
    [ended] = events("session_ended")
    assert ended.detail == "back-channel logout from the identity provider (one session)"
    assert [r.id for r in rows()] == [phone_row.id]


def test_a_logout_token_for_a_subject_ends_all_their_sessions(scripted_app, scripted, app):
    laptop, phone = app.test_client(), app.test_client()
    sign_in(laptop, scripted)
    sign_in(phone, scripted)
    sign_in(app.test_client(), scripted, SUE)

    token = scripted.logout_token(sub=TOM["sub"])
    assert app.test_client().post(BACKCHANNEL, data={"logout_token": token}).status_code == 200

    assert not signed_in(laptop) and not signed_in(phone)
    assert [r.subject for r in rows()] == [SUE["sub"]]
    [ended] = events("session_ended")
    assert (ended.actor, ended.actor_id, ended.target, ended.detail) == (
        "identity provider",
        None,
        TOM["email"],
        "back-channel logout from the identity provider (every session)",
    )


def test_a_logout_token_for_a_subject_ends_their_password_sessions_too(scripted_app, scripted, app):
    # An account made before single sign-on, with a password, linked by its verified email.
    builders.make_user(email=TOM["email"])
    sso, password = app.test_client(), app.test_client()
    sign_in(sso, scripted)
    builders.login(password, db.session.scalar(select(User).where(User.email == TOM["email"])))
    assert signed_in(password)

    token = scripted.logout_token(sub=TOM["sub"])
    assert app.test_client().post(BACKCHANNEL, data={"logout_token": token}).status_code == 200
    assert not signed_in(sso) and not signed_in(password)


def _logout_tokens(provider: ScriptedProvider, sid: str) -> dict:
    now = int(time.time())
    sub = TOM["sub"]
    return {
        "wrong-key": provider.logout_token(sub=sub, key=OTHER_KEY),
        "alg-none": unsigned(
            {"alg": "none", "typ": "logout+jwt"},
            {
                "iss": provider.url,
                "aud": provider.client_id,
                "iat": now,
                "exp": now + 60,
                "jti": "j",
                "sub": sub,
                "events": {BACKCHANNEL_EVENT: {}},
            },
        ),
        "hs256": provider.logout_token(
            sub=sub, key=provider.hmac_key(), header={"alg": "HS256", "kid": None}
        ),
        "audience": provider.logout_token(sub=sub, aud="another-client"),
        "issuer": provider.logout_token(sub=sub, iss="https://evil.example"),
        "expired": provider.logout_token(sub=sub, iat=now - 600, exp=now - 300),
        "no-expiry": provider.logout_token(sub=sub, exp=None),
        "nonce": provider.logout_token(sub=sub, nonce="n"),
        "no-event": provider.logout_token(sub=sub, events=None),
        "event-as-list": provider.logout_token(sub=sub, events=[BACKCHANNEL_EVENT]),
        "no-subject-nor-session": provider.logout_token(),
        "another-type": provider.logout_token(sub=sub, header={"typ": "at+jwt"}),
        "an-id-token": provider.sign(
            {
                "iss": provider.url,
                "aud": provider.client_id,
                "iat": now,
                "exp": now + 60,
                "sub": sub,
                "sid": sid,
                "nonce": "n",
            }
        ),
        "garbage": "not-a-token",
        "missing": None,
    }


def test_a_logout_token_that_is_not_right_ends_nothing(scripted_app, scripted, app, client):
    sign_in(client, scripted)
    [row] = rows()
    tokens = _logout_tokens(scripted, row.provider_sid)
    caller = app.test_client()
    for name, token in tokens.items():
        data = {"logout_token": token} if token is not None else {}
        response = caller.post(BACKCHANNEL, data=data)
        assert response.status_code == 400, name
        assert response.json["error"] == "invalid_request", name
        assert response.json["error_description"].startswith("The logout token was refused: ")
        assert signed_in(client), name
    assert events("session_ended") == [] and len(rows()) == 1
    # Tokens anyone can post do not make the registry fetch the provider's keys each time.
    assert scripted.hits["/jwks"] <= 2


def test_a_logout_token_signed_with_a_rotated_key_is_taken(scripted_app, scripted, client, app):
    sign_in(client, scripted)
    scripted.rotate_key(same_kid=True)
    token = scripted.logout_token(sub=TOM["sub"])
    assert app.test_client().post(BACKCHANNEL, data={"logout_token": token}).status_code == 200
    assert not signed_in(client)


# 5. The provider's tokens stay on the server.


def test_no_token_travels_in_the_session_cookie(scripted_app, scripted, client, app):
    sign_in(client, scripted)
    [row] = rows()
    assert row.id_token.count(".") == 2 and row.access_token and row.refresh_token

    raw = client.get_cookie("session").value
    content = app.session_interface.get_signing_serializer(app).loads(raw)
    assert "id_token" not in content
    for token in (row.id_token, row.access_token, row.refresh_token):
        assert token not in str(content) and token not in raw
    assert len(raw) < 600


def test_signing_out_deletes_the_tokens_and_still_names_the_session_to_the_provider(
    mock_app, app, oidc_provider
):
    laptop, phone = app.test_client(), app.test_client()
    sso_sign_in(laptop, TOM)
    sso_sign_in(phone, TOM)
    laptop_token = rows()[0].id_token

    response = builders.post(laptop, "/logout")
    location = urllib.parse.urlsplit(response.headers["Location"])
    assert urllib.parse.parse_qs(location.query)["id_token_hint"] == [laptop_token]
    assert rows() == []  # sign-out ends every session of the person, and their tokens
    assert not signed_in(phone)


def test_a_session_whose_row_is_gone_is_signed_out_at_once(scripted_app, scripted, client):
    sign_in(client, scripted)
    db.session.execute(ProviderSession.__table__.delete())
    db.session.commit()
    assert not signed_in(client)


def test_a_session_from_before_with_the_id_token_in_its_cookie_is_signed_out(app, client):
    user = builders.make_user(email="old@example.com")
    db.session.commit()
    builders.login(client, user)
    with client.session_transaction() as session:
        session["id_token"] = "header.payload.signature"
    assert not signed_in(client)


def test_the_recheck_interval_is_a_setting(scripted_app, scripted, client):
    scripted_app.config["OIDC_RECHECK_SECONDS"] = 3600
    sign_in(client, scripted)
    age_checks(301)
    assert signed_in(client)
    assert scripted.hits["/token"] == 1


def test_the_algorithms_taken_cannot_include_none_or_a_shared_secret(database_url):
    from registry import create_app

    for weak in (["RS256", "none"], "RS256,HS256"):
        with pytest.raises(RuntimeError, match="OIDC_ID_TOKEN_ALGORITHMS may not hold"):
            create_app(
                {
                    "SQLALCHEMY_DATABASE_URI": database_url,
                    "SECRET_KEY": "test",
                    "OIDC_ID_TOKEN_ALGORITHMS": weak,
                }
            )
