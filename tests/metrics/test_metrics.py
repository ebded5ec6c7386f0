"""Prometheus' /metrics: what it says agrees with what happened, gunicorn's workers add up, and
only those let in read it.

The counters and histograms live in the process-global default registry, which every test of
the run shares: a test compares a scrape after its scenario with one before (deltas). The gauges
are read from the database at scrape time, so they are compared as they are.
"""

import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from registry import contract, create_app
from registry.extensions import db
from registry.metrics import server as metrics_server
from registry.notifications import sender
from registry.outbox.models import EmailStatus, OutboxEmail
from registry.provisioning.models import DeadLetter
from registry.requests import services
from registry.requests.models import Request, RequestEvent
from registry.timeutil import utcnow
from tests import builders
from tests.conftest import free_port
from tests.support import eventually, run_async

ROOT = Path(__file__).resolve().parents[2]
OUTSIDE = "203.0.113.9"  # TEST-NET-3: no loopback, in no allowed network by default
STRONG_KEY = "f3b1c9e07a5d4e28b6c2a9d1e4f70b3c5a8d2e6f1b9c4a7e"  # a production app needs one
WAIT = 30


def parse(text: str) -> dict:
    """Every sample of a scrape: {(name, ((label, value), ...)): value}."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def scrape(client, **kwargs) -> dict:
    response = client.get("/metrics", **kwargs)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return parse(response.get_data(as_text=True))


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def delta(before: dict, after: dict, name: str, **labels) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


def _count(model, *where) -> int:
    db.session.rollback()
    found = db.session.scalar(select(func.count()).select_from(model).where(*where))
    db.session.rollback()
    return found


def _status(request_id: int) -> str:
    db.session.rollback()
    status = db.session.scalar(select(Request.status).where(Request.id == request_id))
    db.session.rollback()
    return status


def _wait_for(request_id: int, status: str) -> None:
    eventually(
        lambda: _status(request_id) == status,
        timeout=WAIT,
        message=f"request {request_id} is {_status(request_id)}, not {status}",
    )


def _approved(owner, admin, **overrides) -> int:
    req = builders.submit(owner, **overrides)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    return req.id


# --- the numbers ---------------------------------------------------------------------------


def test_the_scrape_agrees_with_a_run_through_the_reference_provisioner(
    provisioner, nats_app, client, owner, admin
):
    """3 approved and provisioned, 1 approved that fails at a step, 1 rejected, 1 left pending,
    1 report no request has: every counter, histogram and gauge says exactly that."""
    before = scrape(client)
    nats_app.config["PROVISIONER_FAIL_RULES"] = [{"step": "manifests_committed", "match": "Broken"}]

    provisioned = [_approved(owner, admin, name=f"Ferry {n}") for n in range(3)]
    failed = _approved(owner, admin, name="Broken ferry")
    rejected = builders.submit(owner, name="Unwanted ferry")
    services.decide(rejected.id, admin, approve=False, comment="Not needed.")
    db.session.commit()
    builders.submit(owner, name="Waiting ferry")
    for request_id in provisioned:
        _wait_for(request_id, "provisioned")
    _wait_for(failed, "failed")

    bad = {"licence_plate": "ffffff", "cluster": "silver", "status": "provisioned"}
    bad["workflow"] = "silver-ffffff-999999"

    async def publish(js):
        import json

        await js.publish(contract.STATUS_SUBJECT, json.dumps(bad).encode())

    run_async(publish, nats_app.config["NATS_URL"])
    eventually(lambda: _count(DeadLetter) == 1, timeout=WAIT)

    # Every report the bridge applied is one event with its cluster on a timeline.
    reports = _count(RequestEvent, RequestEvent.cluster.is_not(None))
    assert reports == 3 * len(contract.STEPS) + 3  # the broken one: 2 steps, then its failure
    after = eventually(
        lambda: (
            s
            if delta(before, s := scrape(client), "registry_bridge_reports_applied_total")
            == reports
            else None
        ),
        timeout=WAIT,
    )
    pending_mail = _count(OutboxEmail, OutboxEmail.status == EmailStatus.PENDING.value)
    assert value(after, "registry_outbox_pending_messages", outbox="mail") == pending_mail > 0
    assert value(after, "registry_outbox_oldest_pending_age_seconds", outbox="mail") > 0

    def decisions(decision):
        return delta(
            before,
            after,
            "registry_request_time_to_decision_seconds_count",
            kind="create",
            decision=decision,
        )

    assert decisions("approved") == 4
    assert decisions("rejected") == 1
    assert (
        0
        <= delta(
            before,
            after,
            "registry_request_time_to_decision_seconds_sum",
            kind="create",
            decision="approved",
        )
        < 4 * WAIT
    )
    name = "registry_request_time_to_provisioned_seconds"
    assert delta(before, after, f"{name}_count", kind="create") == 3
    assert 0 < delta(before, after, f"{name}_sum", kind="create") < 3 * 2 * WAIT
    # Every observation is in the +Inf bucket, and under a minute in the one of 60 s.
    assert delta(before, after, f"{name}_bucket", kind="create", le="+Inf") == 3
    assert delta(before, after, f"{name}_bucket", kind="create", le="60.0") == 3
    assert delta(before, after, f"{name}_count", kind="edit") == 0

    assert delta(before, after, "registry_bridge_reports_dead_lettered_total") == 1
    assert delta(before, after, "registry_bridge_report_lag_seconds_count") == reports
    assert 0 <= delta(before, after, "registry_bridge_report_lag_seconds_sum") < reports * WAIT

    # The database's state, as it is now.
    expected = {("create", "provisioned"): 3, ("create", "failed"): 1}
    expected |= {("create", "rejected"): 1, ("create", "pending"): 1}
    for (kind, status), count in expected.items():
        assert value(after, "registry_requests", kind=kind, status=status) == count
    every = sum(v for (n, _), v in after.items() if n == "registry_requests")
    assert every == 6
    assert value(after, "registry_pending_requests") == 1
    assert value(after, "registry_pending_request_oldest_age_seconds") > 0
    assert value(after, "registry_outbox_pending_messages", outbox="nats") == 0
    assert value(after, "registry_outbox_oldest_pending_age_seconds", outbox="nats") == 0
    assert value(after, "registry_database_up") == 1

    # The mail sender, which this test runs by hand: every email of the run sent once.
    while sender.deliver_due():
        pass
    final = scrape(client)
    sent = _count(OutboxEmail, OutboxEmail.status == EmailStatus.SENT.value)
    assert sent == pending_mail
    assert delta(after, final, "registry_emails_sent_total", via="mailbox") == sent
    assert delta(after, final, "registry_emails_failed_total") == 0
    assert value(final, "registry_outbox_pending_messages", outbox="mail") == 0


def test_emails_that_fail_are_counted_by_why(app, client, owner, monkeypatch):
    builders.submit(owner)  # "request received" for the team, "awaiting review" for reviewers
    ids = list(db.session.scalars(select(OutboxEmail.id).order_by(OutboxEmail.id)))
    db.session.rollback()
    assert len(ids) >= 2
    refused, unreachable = ids[0], ids[1]
    deliver = sender._deliver
    calls = []

    def flaky(email):
        calls.append(email.id)
        if email.id == refused:
            raise sender.PermanentFailure("SMTPRecipientsRefused: 550 no such user")
        if email.id == unreachable and calls.count(unreachable) == 1:
            raise sender.ServerAway("ConnectionRefusedError: the server is away")
        deliver(email)

    monkeypatch.setattr(sender, "_deliver", flaky)
    before = scrape(client)
    sender.deliver_due()  # stops at the unreachable server
    app.config["MAIL_SERVER_RETRY_SECONDS"] = 0
    db.session.execute(OutboxEmail.__table__.update().values(next_attempt_at=utcnow()))
    db.session.commit()
    while sender.deliver_due():
        pass
    after = scrape(client)

    assert delta(before, after, "registry_emails_failed_total") == 1
    assert delta(before, after, "registry_email_attempts_failed_total", reason="permanent") == 1
    assert (
        delta(before, after, "registry_email_attempts_failed_total", reason="server_unreachable")
        == 1
    )
    assert delta(before, after, "registry_emails_sent_total", via="mailbox") == len(ids) - 1


# --- who may read it -----------------------------------------------------------------------


@pytest.fixture
def make_app(database_url):
    """Apps of a test's own settings on the test database; their connections closed after it."""
    made = []

    def make(**settings):
        config = {"TESTING": True, "SECRET_KEY": "test", "SQLALCHEMY_DATABASE_URI": database_url}
        made.append(create_app({**config, **settings}))
        return made[-1]

    yield make
    for app in made:
        with app.app_context():
            db.engine.dispose()


def test_outside_the_allowed_networks_only_the_token_reads_the_metrics(app, client):
    outside = {"environ_base": {"REMOTE_ADDR": OUTSIDE}}
    # No token configured: from outside, there is nothing here; a token cannot help.
    response = client.get("/metrics", **outside)
    assert response.status_code == 404
    assert b"registry_" not in response.data
    response = client.get("/metrics", headers={"Authorization": "Bearer guess"}, **outside)
    assert response.status_code == 403
    assert b"registry_" not in response.data

    app.config["METRICS_TOKEN"] = "scrape-secret"
    assert client.get("/metrics", **outside).status_code == 404
    wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-secreT"}, **outside)
    assert wrong.status_code == 403
    assert b"registry_" not in wrong.data
    basic = client.get("/metrics", headers={"Authorization": "Basic scrape-secret"}, **outside)
    assert basic.status_code == 404
    right = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret"}, **outside)
    assert right.status_code == 200
    assert parse(right.get_data(as_text=True))[("registry_database_up", ())] == 1
    # No session: no cookie is set, and no sign-in is asked for.
    assert "Set-Cookie" not in right.headers


def test_the_allowed_networks_are_a_setting(make_app):
    # As the environment gives it: REGISTRY_METRICS_ALLOWED_NETWORKS="10.0.0.0/8, 203.0.113.0/24"
    app = make_app(METRICS_ALLOWED_NETWORKS="10.0.0.0/8, 203.0.113.0/24")
    client = app.test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": OUTSIDE}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.128.4.7"}).status_code == 200
    # Loopback is no longer in the list.
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.1"}).status_code == 404
    with pytest.raises(RuntimeError, match="METRICS_ALLOWED_NETWORKS"):
        make_app(METRICS_ALLOWED_NETWORKS=["10.0.0.0/33"])


def test_production_opens_the_metrics_to_nobody_until_told(make_app):
    """In development loopback reads them; in production only the token or a list of networks
    set on purpose (a pod's loopback is shared by every container in it)."""
    assert make_app().test_client().get("/metrics").status_code == 200
    production = {
        "ENV": "production",
        "SECRET_KEY": STRONG_KEY,
        "PASSWORD_LOGIN": True,
        "PUBLIC_URL": "https://registry.example.test",
    }
    closed = make_app(**production)
    assert closed.config["METRICS_ALLOWED_NETWORKS"] == []
    assert closed.test_client().get("/metrics").status_code == 404
    by_token = make_app(**production, METRICS_TOKEN="scrape-secret")
    bearer = {"Authorization": "Bearer scrape-secret"}
    assert by_token.test_client().get("/metrics").status_code == 404
    assert by_token.test_client().get("/metrics", headers=bearer).status_code == 200
    listed = make_app(**production, METRICS_ALLOWED_NETWORKS="127.0.0.0/8")
    assert listed.test_client().get("/metrics").status_code == 200


def test_behind_a_trusted_proxy_the_client_is_the_forwarded_address(make_app):
    """The router runs beside the registry (here: on loopback). A client it forwards is judged by
    its own address, never by the router's."""
    app = make_app(TRUSTED_PROXIES=1)
    client = app.test_client()
    forwarded = client.get("/metrics", headers={"X-Forwarded-For": OUTSIDE})
    assert forwarded.status_code == 404
    assert client.get("/metrics").status_code == 200  # scraped directly, from loopback


def test_a_database_that_does_not_answer_is_a_zero_not_an_error(make_app):
    # Nothing listens on port 1: refused at once.
    app = make_app(SQLALCHEMY_DATABASE_URI="postgresql://postgres@127.0.0.1:1/registry")
    samples = scrape(app.test_client())
    assert samples[("registry_database_up", ())] == 0
    assert not [name for name, _ in samples if name.startswith("registry_requests")]
    # The process's own metrics are still there.
    assert ("registry_bridge_reports_applied_total", ()) in samples


# --- processes ---------------------------------------------------------------------------

# One process of the registry (as a gunicorn worker or `flask worker` is): decides a request and
# sends the mail that is due, with its metrics in PROMETHEUS_MULTIPROC_DIR.
DECIDE = """
import sys
from registry import create_app

app = create_app()  # first: it imports the packages in an order without cycles
from registry.auth.models import User
from registry.extensions import db
from registry.notifications import sender
from registry.requests import services

with app.app_context():
    admin = db.session.get(User, int(sys.argv[2]))
    services.decide(int(sys.argv[1]), admin, approve=True)
    db.session.commit()
    while sender.deliver_due():
        pass
"""


def _get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback
        return response.read().decode()


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, as a pod is stopped; SIGKILL if it does not end in time: never left running."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def _up(url: str) -> bool:
    try:
        _get(url, timeout=1)
    except (OSError, urllib.error.URLError):
        return False
    return True


@pytest.mark.processes  # real gunicorn workers
def test_gunicorn_workers_and_other_processes_add_up(app, database_url, owner, admin, tmp_path):
    """gunicorn with two workers (its settings from ./gunicorn.conf.py), and two more processes
    of the registry that each decide a request and send mail: one scrape, whichever worker
    answers it, shows the sum of all of them."""
    first, second = builders.submit(owner), builders.submit(owner)
    ids, admin_id = (first.id, second.id), admin.id
    db.session.commit()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    # A file of an earlier run, which on_starting must clear (read, it would break the scrape).
    (metrics_dir / "counter_4242.db").write_bytes(b"not a metrics file")
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
        "REGISTRY_SQLALCHEMY_DATABASE_URI": database_url,
        "REGISTRY_SECRET_KEY": "metrics-test",
        "REGISTRY_RUN_BACKGROUND": "false",
        "REGISTRY_DEV_MAILBOX": "true",
    }
    env.pop("REGISTRY_NATS_URL", None)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "gunicorn.log").open("w")
    gunicorn = subprocess.Popen(  # noqa: S603 - the project's own command
        [
            Path(sys.executable).parent / "gunicorn",
            "-w",
            "2",
            "-b",
            f"127.0.0.1:{port}",
            "wsgi:app",
        ],
        cwd=ROOT,  # where gunicorn finds gunicorn.conf.py by default
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        eventually(lambda: _up(base + "/healthz"), timeout=WAIT, message="gunicorn did not start")
        assert not (metrics_dir / "counter_4242.db").exists()
        before = parse(_get(base + "/metrics"))
        pids = []
        for request_id in ids:
            process = subprocess.run(  # noqa: S603 - our interpreter and script
                [sys.executable, "-c", DECIDE, str(request_id), str(admin_id)],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert process.returncode == 0, process.stderr[-3000:]
        written = {p.name for p in metrics_dir.iterdir()}
        pids = {name.rsplit("_", 1)[1] for name in written if name.startswith("histogram_")}
        assert len(pids) >= 4, written  # 2 gunicorn workers, 2 deciding processes

        sent = _count(OutboxEmail, OutboxEmail.status == EmailStatus.SENT.value)
        assert sent > 0
        for _ in range(6):  # several scrapes: both workers answer some, each the same sum
            after = parse(_get(base + "/metrics"))
            assert (
                delta(
                    before,
                    after,
                    "registry_request_time_to_decision_seconds_count",
                    kind="create",
                    decision="approved",
                )
                == 2
            )
            assert delta(before, after, "registry_emails_sent_total", via="mailbox") == sent
            assert value(after, "registry_requests", kind="create", status="approved") == 2
            assert value(after, "registry_outbox_pending_messages", outbox="nats") == 2
            assert value(after, "registry_database_up") == 1
    finally:
        _stop(gunicorn)
        log.close()


def test_a_worker_process_serves_its_metrics_on_metrics_port(nats_app, database_url, tmp_path):
    """`flask worker` with METRICS_PORT: its counters on their own port, under the same rule."""
    port = free_port()
    env = {
        **os.environ,
        "REGISTRY_SQLALCHEMY_DATABASE_URI": database_url,
        "REGISTRY_NATS_URL": nats_app.config["NATS_URL"],
        "REGISTRY_SECRET_KEY": "metrics-test",
        "REGISTRY_METRICS_PORT": str(port),
        "REGISTRY_METRICS_HOST": "127.0.0.1",
        "REGISTRY_METRICS_TOKEN": "worker-secret",
        "REGISTRY_METRICS_ALLOWED_NETWORKS": "[]",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "worker.log").open("w")
    worker = subprocess.Popen(  # noqa: S603 - the project's own command
        [str(Path(sys.executable).parent / "flask"), "--app", "registry", "worker"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:

        def answers():
            try:
                _get(url, timeout=1)
            except urllib.error.HTTPError as exc:
                exc.close()
                return exc.code
            except OSError:
                return None
            return 200

        # Loopback is not allowed here (an empty list): without the token, nothing.
        assert eventually(answers, timeout=WAIT, message="no metrics port") == 404
        request = urllib.request.Request(url, headers={"Authorization": "Bearer worker-secret"})
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback
            samples = parse(response.read().decode())
        assert ("registry_bridge_reports_applied_total", ()) in samples
        assert ("registry_emails_sent_total", (("via", "smtp"),)) in samples
        # The database's gauges are the web side's to serve.
        assert not [name for name, _ in samples if name == "registry_requests"]
    finally:
        _stop(worker)
        log.close()


@pytest.mark.processes  # its own HTTP server
def test_the_metrics_server_serves_only_metrics(app):
    app.config.update(METRICS_PORT=free_port(), METRICS_HOST="127.0.0.1")
    server = metrics_server.serve(app)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert "registry_emails_failed_total" in _get(base + "/metrics")
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(base + "/elsewhere")
        refused.value.close()
        assert refused.value.code == 404
    finally:
        server.shutdown()
        server.server_close()
    app.config["METRICS_PORT"] = None
    assert metrics_server.serve(app) is None
