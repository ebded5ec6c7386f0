"""Sessions that end when they should, the headers on every response, and sign-in guessing."""

import os
import re
import socket
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from sqlalchemy import func, select

from registry import create_app, security
from registry.audit.models import AuditEvent
from registry.auth import guessing
from registry.auth import services as auth_services
from registry.auth.models import RateLimit, RateLimitHit, Role
from registry.extensions import db
from registry.timeutil import utcnow
from tests import builders
from tests.app import test_access
from tests.app.test_access import ROUTES, send, sign_in
from tests.conftest import FreshContextClient, free_port
from tests.support import Gunicorn

world = test_access.world  # the access matrix's fixture: one product, a person of each role


def cookie_of(client) -> str:
    return client.get_cookie("session").value


def with_cookie(app, value: str):
    other = app.test_client()
    other.set_cookie("session", value)
    return other


@pytest.fixture
def fresh_clients(app):
    app.test_client_class = FreshContextClient
    return app.test_client


def test_a_stolen_cookie_is_useless_after_sign_out(app, client, owner, fresh_clients):
    builders.login(client, owner)
    stolen = cookie_of(client)
    assert with_cookie(app, stolen).get("/products").status_code == 200

    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})

    thief = with_cookie(app, stolen)
    response = thief.get("/products")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    # Nor can it submit a request with a token it read before.
    refused = thief.post("/products/new", data=builders.form_data())
    assert refused.status_code in (302, 400)
    # A restart changes nothing: the version is in the database, not in the process.
    restarted = create_app(
        {
            "SECRET_KEY": app.config["SECRET_KEY"],
            "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        }
    )
    restarted.test_client_class = FreshContextClient
    again = restarted.test_client()
    again.set_cookie("session", stolen)
    assert again.get("/products").status_code == 302
    with restarted.app_context():
        db.engine.dispose()


def test_sign_out_ends_the_users_sessions_on_every_device(app, owner, fresh_clients):
    laptop, phone = fresh_clients(), fresh_clients()
    builders.login(laptop, owner)
    builders.login(phone, owner)
    laptop.post("/logout", data={"csrf_token": builders.csrf_token(laptop)})
    assert phone.get("/products").status_code == 302


def test_a_role_change_and_a_deactivation_end_existing_sessions(app, runner, admin, fresh_clients):
    session = fresh_clients()
    builders.login(session, admin)
    assert session.get("/admin/queue").status_code == 200

    assert runner.invoke(args=["users", "set-role", admin.email, "support"]).exit_code == 0
    assert session.get("/admin/queue").status_code == 302  # signed out, not a super admin still

    builders.login(session, admin)
    assert session.get("/history").status_code == 200
    assert runner.invoke(args=["users", "deactivate", admin.email]).exit_code == 0
    assert session.get("/history").status_code == 302
    refused = session.post(
        "/login",
        data={
            "email": admin.email,
            "password": "password",
            "csrf_token": builders.csrf_token(session),
        },
    )
    assert refused.status_code == 422
    actions = db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert "role_changed" in actions and "user_deactivated" in actions


@pytest.mark.parametrize(
    ("visits", "why"),
    [
        # Minutes after signing in at which the person comes back; the last one is the check.
        ([30, 89], None),  # 59 minutes idle: still signed in
        ([30, 91], "after 60 minutes without activity"),
        ([*range(0, 720, 50), 727], "more than 12 hours old"),  # busy all day, yet 12 h is all
    ],
)
def test_idle_and_absolute_lifetimes(app, client, owner, monkeypatch, visits, why):
    app.config.update(SESSION_IDLE_MINUTES=60, SESSION_MAX_HOURS=12)
    signed_in_at = 1_800_000_000.0
    clock = {"now": signed_in_at}
    monkeypatch.setattr(security.time, "time", lambda: clock["now"])
    builders.login(client, owner)

    *before, last = visits
    for minute in before:
        clock["now"] = signed_in_at + minute * 60
        assert client.get("/products").status_code == 200
    clock["now"] = signed_in_at + last * 60
    response = client.get("/products", follow_redirects=True)

    if why is None:
        assert response.request.path == "/products"
    else:
        assert response.request.path == "/login"
        assert why in response.get_data(as_text=True)


def test_the_session_cookie_is_secure_httponly_and_samesite_in_production(database_url):
    app = create_app(
        {
            "ENV": "production",
            "SECRET_KEY": "f3b1c9e07a5d4e28b6c2a9d1e4f70b3c5a8d2e6f1b9c4a7e",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PASSWORD_LOGIN": True,
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
        }
    )
    app.test_client_class = FreshContextClient
    with app.app_context():
        user = builders.make_user(email="prod@example.com")
        client = app.test_client()
        builders.login(client, user)
        db.session.remove()
        db.engine.dispose()
    [cookie] = [c for c in client._cookies.values() if c.key == "session"]
    assert cookie.secure and cookie.http_only and cookie.same_site == "Lax"
    assert cookie.expires is not None  # permanent: it dies with SESSION_MAX_HOURS


# The headers every response carries (HSTS: in production or behind https).
EVERY_RESPONSE = {
    "Content-Security-Policy": re.compile(
        r"default-src 'self'; script-src 'self'; style-src 'self'; .*frame-ancestors 'none'"
    ),
    "X-Frame-Options": re.compile("^DENY$"),
    "X-Content-Type-Options": re.compile("^nosniff$"),
    "Referrer-Policy": re.compile("^same-origin$"),
    "Strict-Transport-Security": re.compile(r"^max-age=31536000; includeSubDomains$"),
}


def assert_headers(response, where: str) -> None:
    for name, pattern in EVERY_RESPONSE.items():
        value = response.headers.get(name, "")
        assert pattern.search(value), f"{where}: {name} is {value!r}"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]


def test_every_route_answers_with_the_security_headers(app, client, world):
    app.test_client_class = FreshContextClient
    seen = 0
    for persona in ("anonymous", "requester", "super_admin"):
        for route in ROUTES:
            visitor = app.test_client()
            sign_in(visitor, world, persona)
            response = send(visitor, app, world, route)
            where = f"{route.method} {route.endpoint} as {persona} ({response.status_code})"
            if route.endpoint == "notifications.mailbox_html" and response.status_code == 200:
                # An email's own HTML, framed by the mailbox page of this site only.
                assert response.headers["X-Frame-Options"] == "SAMEORIGIN", where
                policy = response.headers["Content-Security-Policy"]
                assert "default-src 'none'" in policy and "frame-ancestors 'self'" in policy
            else:
                assert_headers(response, where)
            assert response.headers["Cache-Control"] == "no-store", where
            seen += 1
    assert seen == 3 * len(ROUTES)
    # Errors, a refused CSRF token and static files too.
    assert_headers(client.get("/no/such/page"), "404")
    assert_headers(client.post("/logout"), "CSRF 400")
    static = client.get("/static/registry.css")
    assert_headers(static, "static")
    assert static.headers.get("Cache-Control") != "no-store"
    static.close()


def test_the_pages_have_no_inline_script_or_style_the_policy_would_block(app, client, admin):
    builders.submit(admin)
    db.session.commit()
    builders.login(client, admin)
    for path in ("/admin/queue", "/history", "/products", "/login"):
        page = client.get(path, follow_redirects=True).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", page), path
        assert " style=" not in page and "<style" not in page, path
        assert re.search(r" on[a-z]+=", page) is None, path
    # HTMX adds a <style> of its own and may evaluate code unless told not to.
    assert '"includeIndicatorStyles":false' in page and '"allowEval":false' in page


def attempt(client, email: str, password: str):
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": builders.csrf_token(client)},
    )


def test_the_21st_wrong_password_in_a_minute_is_refused_even_when_right(app, client, owner):
    for _ in range(20):
        assert attempt(client, owner.email, "guess").status_code == 422

    response = attempt(client, owner.email.upper(), "password")

    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "Too many refused sign-ins for this account. Try again in" in page
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= 60
    assert client.get("/products").status_code == 302
    # Another account from the same address is not held up by it.
    other = builders.make_user(email="other@example.com")
    assert attempt(client, other.email, "password").status_code == 303
    refusals = db.session.scalars(
        select(AuditEvent.detail).where(AuditEvent.action == "sign_in_failed")
    ).all()
    assert len(refusals) == 21 and "too many attempts" in refusals[-1]


def test_one_address_guessing_many_accounts_is_held_up(app, client):
    app.config["LOGIN_LIMIT_PER_ADDRESS"] = "30 per minute"
    for n in range(30):
        assert attempt(client, f"user{n}@example.com", "guess").status_code == 422
    response = attempt(client, "someone-else@example.com", "guess")
    assert response.status_code == 429
    assert "for your address" in response.get_data(as_text=True)


def test_successful_sign_ins_are_not_counted(app, client, owner):
    for _ in range(25):
        builders.login(client, owner)
        client.post("/logout", data={"csrf_token": builders.csrf_token(client)})


def test_a_refused_sign_in_waits_only_until_the_oldest_refusals_leave_the_minute(
    app, client, owner, monkeypatch
):
    now = [utcnow()]
    monkeypatch.setattr(guessing, "utcnow", lambda: now[0])
    for _ in range(10):
        assert attempt(client, owner.email, "guess").status_code == 422
    now[0] += timedelta(seconds=30)
    for _ in range(10):
        assert attempt(client, owner.email, "guess").status_code == 422
    now[0] += timedelta(seconds=15)

    response = attempt(client, owner.email, "password")
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "15"
    assert "Try again in 15 seconds." in response.get_data(as_text=True)

    # A minute after the first ten, they no longer count; the ten after them still do.
    now[0] += timedelta(seconds=15)
    for _ in range(10):
        assert attempt(client, owner.email, "guess").status_code == 422
    assert attempt(client, owner.email, "guess").status_code == 429
    assert attempt(client, owner.email, "password").status_code == 429
    now[0] += timedelta(seconds=30)
    assert attempt(client, owner.email, "password").status_code == 303


def test_attempts_at_the_same_moment_never_pass_the_limit_together(app, owner):
    """Each attempt is counted before its password is checked, under its key's lock: twelve at
    once on a limit of five get five checks, not twelve."""
    app.config["LOGIN_LIMIT_PER_ACCOUNT"] = "5 per minute"
    email = owner.email
    together = threading.Barrier(12)

    def sign_in_attempt(n: int) -> str:
        with app.app_context():
            together.wait(timeout=10)
            try:
                guessing.begin(email, f"192.0.2.{n}")
            except guessing.TooManyAttempts:
                return "refused"
            return "counted"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(sign_in_attempt, range(12)))
    assert outcomes.count("counted") == 5, outcomes
    hits = db.session.scalar(
        select(func.count()).where(RateLimitHit.key == f"account:{owner.email}")
    )
    assert hits == 5


def test_counts_that_no_longer_count_are_deleted(app, client, owner, monkeypatch):
    """The counts stay a small table: what left its window is deleted by the next sign-in
    attempt (in each process at most once a minute)."""
    long_ago = utcnow() - timedelta(hours=2)
    for n in range(50):
        db.session.add(RateLimit(key=f"account:gone{n}@example.com", expires_at=long_ago))
        db.session.add(RateLimitHit(key=f"account:gone{n}@example.com", at=long_ago))
    db.session.commit()
    monkeypatch.setattr(guessing, "_next_sweep", 0.0)

    assert attempt(client, owner.email, "guess").status_code == 422
    builders.login(client, owner)

    db.session.rollback()
    keys = db.session.scalars(select(RateLimit.key).order_by(RateLimit.key)).all()
    assert keys == [f"account:{owner.email}", "address:127.0.0.1"]
    # The refusal's two hits; the sign-in that succeeded took its own back.
    assert db.session.scalars(select(RateLimitHit.key).order_by(RateLimitHit.key)).all() == keys


@pytest.mark.parametrize("limit", ["20 a minute", "0 per minute", "twenty per minute", 20])
def test_a_sign_in_limit_that_is_no_limit_stops_the_start(database_url, limit):
    with pytest.raises(RuntimeError, match="REGISTRY_LOGIN_LIMIT_PER_ACCOUNT"):
        create_app({"SQLALCHEMY_DATABASE_URI": database_url, "LOGIN_LIMIT_PER_ACCOUNT": limit})
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": database_url, "LOGIN_LIMIT_PER_ADDRESS": "3/5 minutes"}
    )
    assert app.config["LOGIN_LIMIT_PER_ADDRESS"] == "3/5 minutes"


class Browser:
    """Sign-in attempts over HTTP, each on a new connection, with one session's cookie and
    CSRF token (signed with the secret every worker shares). ``hold`` opens a connection and
    sends the first line of an attempt only: the worker that accepts it waits for the rest,
    so every other connection goes to another worker until ``finish`` sends it."""

    def __init__(self, server):
        self.server = server
        self.connections: list[socket.socket] = []
        with urllib.request.urlopen(server.base + "/login", timeout=10) as page:  # noqa: S310
            self.cookie = page.headers["Set-Cookie"].split(";", 1)[0]
            self.token = builders.CSRF_META.search(page.read().decode()).group(1)

    def hold(self, email: str, password: str):
        body = urlencode({"email": email, "password": password, "csrf_token": self.token})
        connection = socket.create_connection(("127.0.0.1", self.server.port), timeout=30)
        self.connections.append(connection)
        connection.sendall(f"POST /login HTTP/1.1\r\nHost: {self.server.host}\r\n".encode())
        rest = (
            f"Cookie: {self.cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n{body}"
        )
        return connection, rest.encode()

    @staticmethod
    def finish(held) -> tuple[int, dict[str, str], str]:
        connection, rest = held
        with connection:
            connection.sendall(rest)
            answer = b""
            while chunk := connection.recv(65536):
                answer += chunk
        head, _, body = answer.decode().partition("\r\n\r\n")
        status_line, *header_lines = head.split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines)
        return int(status_line.split()[1]), headers, body

    def attempt(self, email: str, password: str):
        return self.finish(self.hold(email, password))

    def close(self) -> None:
        """Connections a failed assertion left held: closed, or gunicorn waits for them."""
        for connection in self.connections:
            connection.close()


@pytest.mark.processes  # real gunicorn workers
def test_the_guessing_limit_holds_across_gunicorn_workers(app, database_url, owner, tmp_path):
    """Two gunicorn workers on one database, as a pod runs: the 21st wrong password in a minute
    is refused, and then the right one too, whichever worker answers."""
    env = {
        **os.environ,
        "REGISTRY_SQLALCHEMY_DATABASE_URI": database_url,
        "REGISTRY_SECRET_KEY": "guessing-test",
        "REGISTRY_RUN_BACKGROUND": "false",
        "REGISTRY_DEV_MAILBOX": "true",
        # gunicorn.conf.py empties this folder when it starts: one of its own.
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    env.pop("REGISTRY_NATS_URL", None)
    server = Gunicorn(env, free_port(), tmp_path, workers=2)
    browser = None
    try:
        server.wait_until_up()
        browser = Browser(server)
        # One worker waits for the rest of the first attempt: the next ten go to the other.
        first = browser.hold(owner.email, "guess 1")
        for n in range(2, 12):
            assert browser.attempt(owner.email, f"guess {n}")[0] == 422
        assert browser.finish(first)[0] == 422
        for n in range(12, 21):
            assert browser.attempt(owner.email, f"guess {n}")[0] == 422
        answered = server.answered("POST", "/login")
        workers = {pid for pid, _ in answered}
        assert len(answered) == 20 and len(workers) == 2, answered

        # The 21st is refused unseen, the right password with it, by one worker and the other.
        held = browser.hold(owner.email.upper(), "password")
        status, headers, page = browser.attempt(owner.email, "password")
        assert status == 429
        assert "Too many refused sign-ins for this account. Try again in" in page
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert browser.finish(held)[0] == 429
        refusing = {pid for pid, status in server.answered("POST", "/login") if status == 429}
        assert refusing == workers
    finally:
        if browser is not None:
            browser.close()
        server.stop()
    db.session.rollback()
    details = db.session.scalars(
        select(AuditEvent.detail)
        .where(AuditEvent.action == "sign_in_failed")
        .order_by(AuditEvent.id)
    ).all()
    assert (
        details
        == ["wrong email or password"] * 20
        + ["refused without checking: too many attempts for this account"] * 2
    )


def test_an_unknown_account_costs_the_same_password_hash_as_a_known_one(app, owner, monkeypatch):
    checked = []
    real = auth_services.check_password_hash

    def spy(pwhash, password):
        checked.append(pwhash.split("$", 1)[0])
        return real(pwhash, password)

    monkeypatch.setattr(auth_services, "check_password_hash", spy)
    assert auth_services.authenticate(owner.email, "wrong") is None
    assert auth_services.authenticate("nobody@example.com", "wrong") is None
    nopass = auth_services.create_user("sso@example.com", "Sso Only", None, Role.USER)
    assert auth_services.authenticate(nopass.email, "wrong") is None
    owner.active = False
    assert auth_services.authenticate(owner.email, "password") is None
    # One hash each, every one with the configured method and its cost.
    assert checked == ["pbkdf2:sha256:1"] * 4


def test_a_form_sent_after_signing_out_elsewhere_says_so_in_plain_words(client, owner):
    builders.login(client, owner)
    token = builders.csrf_token(client)
    client.post("/logout", data={"csrf_token": token})  # another tab signs out
    htmx = {"HX-Request": "true", "HX-Current-URL": "http://localhost/products/new"}
    response = client.post("/products/new", data={"csrf_token": token}, headers=htmx)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert text.startswith('<p class="flash flash-error" role="alert">You are signed out: Nothing')
    assert "sign in again in a new tab" in text.lower()
    assert 'href="/login?next=/products/new"' in text
    assert "CSRF" not in text and ".." not in text
    # Without JavaScript: the error page, with a way to sign in that comes back to the form.
    page = client.post(
        "/products/new",
        data={"csrf_token": token},
        headers={"Referer": "http://localhost/products/new"},
    ).get_data(as_text=True)
    assert "<h1>You are signed out</h1>" in page
    assert 'href="/login?next=/products/new">Sign in</a>' in page


def test_a_form_from_before_signing_in_again_is_out_of_date(client, owner):
    builders.login(client, owner)
    response = builders.post(client, "/products/new", {"csrf_token": "from-an-old-page"}, htmx=True)
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "This page is out of date" in text and "Reload the page" in text
    assert "CSRF" not in text
