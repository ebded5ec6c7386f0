"""Health as the operators and the super admins see it: /readyz, the banner, a waiting request."""

from datetime import timedelta

from sqlalchemy import update

from registry import create_app, wiring
from registry.extensions import db
from registry.outbox.models import OutboxEmail, OutboxMessage
from registry.requests import services
from registry.timeutil import utcnow
from tests import builders
from tests.conftest import free_port


def stuck_for(model, minutes: int, error: str) -> None:
    db.session.execute(
        update(model).values(
            next_attempt_at=utcnow() - timedelta(minutes=minutes), last_error=error
        )
    )
    db.session.commit()


def test_readyz_is_200_when_the_work_flows_and_503_with_reasons_when_an_outbox_is_stuck(
    client, owner, admin, monkeypatch
):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["database"] == "ok"

    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    stuck_for(OutboxMessage, 5, "TimeoutError: nats: timeout")
    sentence = (
        "outbox: 1 provisioning messages not sent, the oldest due for 5 minutes."
        " Last error: TimeoutError: nats: timeout"
    )
    # A web-only process (its worker runs apart) still serves pages: it says so, and stays
    # ready, so that one NATS outage does not take every web pod out of the Route.
    web_only = client.get("/readyz")
    assert web_only.status_code == 200
    assert web_only.get_json()["checks"]["outbox"] == "stuck"
    assert web_only.get_json()["warnings"] == [sentence]

    # A process that runs the senders is not ready while their outbox is stuck.
    monkeypatch.setattr(
        wiring,
        "status",
        lambda: wiring.Status(
            nats_connected=True, nats_error=None, bridge_pending=0, smtp_reachable=True
        ),
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["reasons"] == [sentence]


def test_super_admins_see_a_banner_and_the_request_says_why_it_waits(client, owner, admin):
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    stuck_for(OutboxMessage, 3, "TimeoutError: nats: timeout")
    stuck_for(OutboxEmail, 3, "ServerAway: ConnectionRefusedError: refused")

    builders.login(client, admin)
    page = client.get("/admin/queue").get_data(as_text=True)
    assert 'id="operations-banner"' in page
    assert "1 provisioning messages not sent, the oldest due for 3 minutes." in page
    assert "emails not sent" in page

    builders.post(client, "/logout")
    builders.login(client, owner)
    assert 'id="operations-banner"' not in client.get("/products").get_data(as_text=True)
    request_page = client.get(f"/requests/{req.id}").get_data(as_text=True)
    assert "Not yet sent to the provisioner: NATS could not take 1 message" in request_page
    assert "TimeoutError: nats: timeout" in request_page


OUTSIDE = {"REMOTE_ADDR": "203.0.113.9"}  # TEST-NET-3: not loopback, in no allowed network


def test_readyz_tells_only_the_metrics_readers_why(app, client, owner, admin):
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    stuck_for(OutboxMessage, 5, "TimeoutError: nats: timeout at 10.4.0.7:4222")

    # Loopback (a metrics reader in development): the checks and what the outbox last met.
    assert "10.4.0.7" in client.get("/readyz").get_data(as_text=True)
    # Anyone else: ready or not, nothing of why.
    anonymous = client.get("/readyz", environ_base=OUTSIDE)
    assert anonymous.status_code == 200
    assert anonymous.get_json() == {"status": "ready"}
    app.config["METRICS_TOKEN"] = "scrape-secret"
    guessed = client.get("/readyz", environ_base=OUTSIDE, headers={"Authorization": "Bearer x"})
    assert guessed.get_json() == {"status": "ready"}
    token = {"Authorization": "Bearer scrape-secret"}
    told = client.get("/readyz", environ_base=OUTSIDE, headers=token).get_json()
    assert told["checks"]["outbox"] == "stuck"
    assert "10.4.0.7" in told["warnings"][0]


def test_a_database_that_is_away_is_not_ready_and_its_error_is_not_told(app):
    away = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "SQLALCHEMY_DATABASE_URI": f"postgresql://registry@127.0.0.1:{free_port()}/registry",
        }
    )
    client = away.test_client()
    try:
        anonymous = client.get("/readyz", environ_base=OUTSIDE)
        reader = client.get("/readyz")
    finally:
        with away.app_context():
            db.engine.dispose()
    assert anonymous.status_code == reader.status_code == 503
    assert anonymous.get_json() == {"status": "not ready"}
    assert "Connection refused" in reader.get_json()["reasons"][0]
