"""A NATS outage, as an operator lives it: approvals go on, ``/readyz`` says 503 with the reason
while NATS is away and 200 once it is back, the log holds one line when the connection is lost
and one when it is back (not a traceback per retry), and the backlog drains when NATS returns:
woken by the reconnection, not by the relay's next poll (set an hour away here).
"""

import logging

import pytest
from sqlalchemy import select

from registry import wiring
from registry.extensions import db
from registry.outbox.models import MessageStatus, OutboxMessage
from registry.requests import services
from tests import builders
from tests.support import eventually

POLL = 3600  # seconds: the relay's and the sender's poll, so that only a wake can drain in time
RETRIES = 4  # the outage lasts until the worker has tried again this many times


@pytest.fixture
def serving(nats_app):
    """This process's background work, started as a serving process starts it."""
    nats_app.config.update(NATS_RELAY_POLL_SECONDS=POLL, MAIL_POLL_SECONDS=POLL)
    threads = wiring.start(nats_app)
    worker = next(t for t in threads if hasattr(t, "ready"))
    assert worker.ready.wait(15)
    yield worker
    wiring.stop()


def unsent() -> int:
    db.session.rollback()
    rows = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.status == MessageStatus.PENDING.value)
    ).all()
    db.session.rollback()
    return len(rows)


def test_a_nats_outage_is_two_log_lines_a_503_and_a_backlog_that_drains_at_once(
    serving, nats_server, client, owner, admin, caplog
):
    assert client.get("/readyz").status_code == 200
    caplog.set_level(logging.DEBUG)
    caplog.clear()

    nats_server.stop()
    requests = []
    for _ in range(5):  # the admins go on approving
        req = builders.submit(owner)
        services.decide(req.id, admin, approve=True)
        db.session.commit()
        requests.append(req)

    def not_ready():
        response = client.get("/readyz")
        return response if response.status_code == 503 else None

    response = eventually(not_ready, timeout=10)
    assert any(r.startswith("nats: not connected") for r in response.get_json()["reasons"])

    # The outage goes on while the worker tries again and again: what the log says meanwhile is
    # under test (a line per retry at DEBUG, nothing louder).
    def retries():
        return sum(r.getMessage().startswith("NATS client error") for r in caplog.records)

    eventually(lambda: retries() >= RETRIES, timeout=60, interval=0.2)
    assert unsent() == 5

    nats_server.start()
    eventually(lambda: unsent() == 0, timeout=60, message="backlog not drained: not woken")
    eventually(lambda: client.get("/readyz").status_code == 200, timeout=10)

    loud = [r for r in caplog.records if r.levelno >= logging.WARNING]
    said = [r.getMessage() for r in loud]
    assert [r for r in loud if r.exc_info] == [], said
    assert len(loud) == 2, said
    assert "is not reachable" in said[0] and "is reachable again" in said[1]


def test_claims_are_sized_to_the_work_they_cover(app):
    """Work claimed by a process that died is taken over within a minute, and a live one never
    loses a claim while it still works on it."""
    from registry.notifications import sender
    from registry.provisioning import relay

    assert relay.BATCH * relay.PUBLISH_TIMEOUT < relay.CLAIM_SECONDS <= 60
    # One email: connect, conversation and quit, each bounded by the SMTP timeout.
    assert 3 * app.config["MAIL_TIMEOUT"] < sender.claim_seconds() <= 60
