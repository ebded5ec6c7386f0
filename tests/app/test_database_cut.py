"""A database connection cut under a request: a page is asked once more, on a new connection;
if that fails too, or it was a change, the answer is 503 with Retry-After and a page that says
to try again (and, for a change, that nothing was saved), never a 500.

The connection is really cut: its server process is terminated (``pg_terminate_backend``, from
a connection of the test's own) at the moment the request runs a chosen statement, or the
request's app points at a port where no server answers any more.
"""

import re
from types import SimpleNamespace

import psycopg
import pytest
from sqlalchemy import event, func, select

from registry import create_app
from registry.extensions import db
from registry.outbox.models import OutboxEmail
from registry.requests.models import Request, RequestEvent
from tests import builders
from tests.conftest import FreshContextClient, free_port

TRY_AGAIN = "Try again in a minute"
NOTHING_SAVED = "Nothing was saved: the connection to the database was cut"
IN_DOUBT = "it may have been saved, or not"

# Connections of the app are cut: an app of its own, whose pool no other test shares.
pytestmark = pytest.mark.own_app


class Cutter:
    """Terminates the server process behind the connection that is about to run a statement
    matching ``pattern`` (or to COMMIT), ``times`` times."""

    def __init__(self, engine, url: str):
        self.engine = engine
        self.killer = psycopg.connect(url, autocommit=True)
        self.pattern, self.at_commit, self.left, self.cuts = None, False, 0, 0
        event.listen(engine, "before_cursor_execute", self._before_statement)
        event.listen(engine, "commit", self._before_commit)

    def arm(self, pattern: str | None = None, times: int = 1, at_commit: bool = False) -> None:
        self.pattern = re.compile(pattern) if pattern else None
        self.at_commit, self.left = at_commit, times

    def _cut(self, dbapi_connection) -> None:
        self.left -= 1
        self.cuts += 1
        pid = dbapi_connection.info.backend_pid
        # Waits (up to 5 s) until the process is gone: the statement then meets a dead socket.
        self.killer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))

    def _before_statement(self, conn, cursor, statement, *args):
        if self.left and self.pattern is not None and self.pattern.search(statement):
            self._cut(cursor.connection)

    def _before_commit(self, conn):
        if self.left and self.at_commit:
            self._cut(conn.connection.dbapi_connection)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before_statement)
        event.remove(self.engine, "commit", self._before_commit)
        self.killer.close()


@pytest.fixture
def cutter(app, database_url, is_postgres):
    if not is_postgres:
        pytest.skip("cuts a PostgreSQL server's connection; SQLite has no server to cut from")
    cutter = Cutter(db.engine, database_url)
    yield cutter
    cutter.close()


@pytest.fixture
def pending(owner) -> SimpleNamespace:
    """A pending request, read before any cut is armed (the test's own reads are not cut)."""
    req = builders.submit(owner)
    return SimpleNamespace(id=req.id, name=req.product.name)


def decide(client, request_id: int):
    return builders.post(client, f"/admin/requests/{request_id}/decision", {"decision": "approve"})


def counts() -> dict:
    db.session.rollback()
    found = {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in (Request, RequestEvent, OutboxEmail)
    }
    db.session.rollback()
    return found


def status_of(request_id: int) -> str:
    db.session.rollback()
    return db.session.scalar(select(Request.status).where(Request.id == request_id))


def test_a_page_whose_connection_is_cut_is_read_again_on_a_new_one(
    client, cutter, pending, owner, caplog
):
    builders.login(client, owner)
    cutter.arm(r"\bFROM requests\b", times=1)

    response = client.get(f"/requests/{pending.id}")

    assert cutter.cuts == 1
    assert response.status_code == 200
    assert pending.name in response.get_data(as_text=True)
    assert "asking once more" in caplog.text


def test_a_page_cut_twice_is_a_503_that_says_to_try_again(client, cutter, pending, owner):
    builders.login(client, owner)
    cutter.arm(r"\bFROM requests\b", times=2)

    response = client.get(f"/requests/{pending.id}")

    assert cutter.cuts == 2
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    body = response.get_data(as_text=True)
    assert TRY_AGAIN in body
    assert "terminat" not in body and "SELECT" not in body  # nothing of what went wrong inside
    # The next request finds a new connection.
    assert client.get(f"/requests/{pending.id}").status_code == 200


def test_a_decision_whose_connection_is_cut_saves_nothing_and_says_so(
    client, cutter, pending, admin
):
    builders.login(client, admin)
    before = counts()
    cutter.arm(r"^UPDATE requests\b", times=1)

    response = builders.post(
        client, f"/admin/requests/{pending.id}/decision", {"decision": "approve"}
    )

    assert cutter.cuts == 1
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert NOTHING_SAVED in response.get_data(as_text=True)
    assert status_of(pending.id) == "pending"
    assert counts() == before
    # Sent again, it is decided.
    again = decide(client, pending.id)
    assert again.status_code == 303
    assert status_of(pending.id) == "approved"


def test_a_change_cut_during_its_commit_says_it_may_have_been_saved(client, cutter, pending, admin):
    builders.login(client, admin)
    cutter.arm(at_commit=True, times=1)

    response = builders.post(
        client, f"/admin/requests/{pending.id}/decision", {"decision": "approve"}
    )

    assert cutter.cuts == 1
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert IN_DOUBT in body and NOTHING_SAVED not in body
    # Here the server went before the COMMIT reached it: nothing was, in fact.
    assert status_of(pending.id) == "pending"


def test_a_database_server_that_went_away_is_a_503_never_a_500(app, client, owner, caplog):
    """Every connection is refused: the port the app points at has no server any more."""
    builders.login(client, owner)
    token = builders.csrf_token(client)
    cookie = client.get_cookie("session")
    away = create_app(
        {
            **{key: app.config[key] for key in ("TESTING", "SECRET_KEY", "PUBLIC_URL")},
            "SQLALCHEMY_DATABASE_URI": f"postgresql://registry@127.0.0.1:{free_port()}/registry",
        }
    )
    away.test_client_class = FreshContextClient
    there = away.test_client()
    there.set_cookie("session", cookie.value)
    try:
        page = there.get("/products")
        change = there.post("/requests/1/cancel", data={"csrf_token": token})
        machine = there.put(
            "/api/v1/provision/namespace",
            json={"prefix": "abcdef", "clusterName": "silver"},
            headers={"Authorization": "Bearer prs_x"},
        )
    finally:
        with away.app_context():
            db.engine.dispose()

    assert page.status_code == 503
    assert page.headers["Retry-After"] == "5"
    assert TRY_AGAIN in page.get_data(as_text=True)
    assert change.status_code == 503
    assert NOTHING_SAVED in change.get_data(as_text=True)
    assert machine.status_code == 503
    assert machine.is_json and NOTHING_SAVED in machine.get_json()["error"]
    # The page was asked twice (once more after the first refusal), then given up.
    assert caplog.text.count("asking once more") == 1


def test_the_answer_says_nothing_was_saved_even_when_its_page_cannot_be_drawn(
    app, client, owner, monkeypatch
):
    builders.login(client, owner)
    token = builders.csrf_token(client)
    cookie = client.get_cookie("session")
    away = create_app(
        {
            **{key: app.config[key] for key in ("TESTING", "SECRET_KEY", "PUBLIC_URL")},
            "SQLALCHEMY_DATABASE_URI": f"postgresql://registry@127.0.0.1:{free_port()}/registry",
        }
    )

    def broken(name, *args, **kwargs):
        raise RuntimeError(f"{name} cannot be read")

    monkeypatch.setattr(away.jinja_env, "get_template", broken)
    there = away.test_client()
    there.set_cookie("session", cookie.value)
    try:
        change = there.post("/requests/1/cancel", data={"csrf_token": token})
    finally:
        with away.app_context():
            db.engine.dispose()
    assert change.status_code == 503
    assert change.headers["Retry-After"] == "5"
    assert NOTHING_SAVED in change.get_data(as_text=True)
