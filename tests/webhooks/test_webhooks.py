"""Signed webhooks through an outbox, to receivers that are processes of their own: each event
arrives once with a signature the receiver checks; the events missed while a receiver was down
arrive when it is back; a receiver that hangs or answers 500 holds up only its own product's
events. Targets on private networks are refused unless allowed."""

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from registry.extensions import db
from registry.requests import services as request_services
from registry.webhooks import sender, services
from registry.webhooks.models import WebhookDelivery
from tests import builders
from tests.requests.test_day_two import changed, live_product, provision
from tests.support import eventually

RECEIVER = Path(__file__).with_name("receiver.py")
VERSIONS = itertools.count(1)


class Receiver:
    def __init__(self, tmp_path: Path, secret: str, mode: str = "ok", port: int | None = None):
        from registry.provisioning import embedded

        self.port = port or embedded.free_port()
        self.out = tmp_path / f"events-{self.port}.jsonl"
        self.secret, self.mode = secret, mode
        self.url = f"http://127.0.0.1:{self.port}/hooks"
        self.process = None
        self.start()

    def start(self):
        from registry.provisioning import embedded

        self.process = subprocess.Popen(  # noqa: S603 - this test's own receiver
            [sys.executable, str(RECEIVER), str(self.port), self.secret, self.mode, str(self.out)]
        )
        embedded.wait_for_port(self.port, timeout=10)

    def stop(self):
        self.process.kill()
        self.process.wait(timeout=10)

    def events(self) -> list[dict]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines()]


@pytest.fixture
def hooks(app, tmp_path):
    """Loopback receivers allowed (the tests' own), quick retries, and a running sender."""
    app.config.update(
        WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"],
        WEBHOOK_ALLOW_HTTP=True,
        WEBHOOK_RETRY_BASE_SECONDS=0.2,
        WEBHOOK_RETRY_MAX_SECONDS=0.5,
        WEBHOOK_TIMEOUT_SECONDS=30,
        WEBHOOK_POLL_SECONDS=0.2,
    )
    thread = sender.WebhookSender(app)
    thread.start()
    receivers = []

    def make(product, owner, mode="ok"):
        from registry.provisioning import embedded

        port = embedded.free_port()
        _, secret = services.save(product, f"http://127.0.0.1:{port}/hooks", owner)
        db.session.commit()
        receiver = Receiver(tmp_path, secret, mode, port=port)
        receivers.append(receiver)
        return receiver

    yield make
    for receiver in receivers:  # first, so that a hanging delivery ends now
        receiver.stop()
    thread.stop()
    thread.join(timeout=10)
    assert not thread.is_alive()


def a_change(product, owner):
    """A new description: submitted and decided at once by the rules."""
    words = f"Now with a public map, version {next(VERSIONS)}."
    edit = request_services.submit_edit(product, changed(product, description=words), owner)
    db.session.commit()
    return edit


def test_each_event_arrives_once_signed_and_missed_ones_after_the_receiver_is_back(
    app, hooks, owner, admin
):
    product = live_product(owner, admin)
    receiver = hooks(product, owner)
    edit = a_change(product, owner)
    provision(edit)
    eventually(lambda: len(receiver.events()) == 3, timeout=15)
    got = receiver.events()
    assert [e["type"] for e in got] == [
        "request.submitted", "request.decided", "request.provisioned",
    ]  # fmt: skip
    assert len({e["id"] for e in got}) == 3  # three messages, each once
    assert got[0]["data"]["request_id"] == edit.id
    assert got[0]["data"]["licence_plate"] == product.licence_plate

    # Down: the next events wait, retried; back on the same port, they arrive, once each.
    receiver.stop()
    product = db.session.get(type(product), product.id)
    second = a_change(product, owner)
    eventually(
        lambda: db.session.scalar(
            select(WebhookDelivery.attempts)
            .where(WebhookDelivery.payload.is_not(None))
            .order_by(WebhookDelivery.id.desc())
        ) >= 1,
        timeout=15,
    )  # fmt: skip
    db.session.rollback()
    receiver.start()
    eventually(lambda: len(receiver.events()) == 5, timeout=15)
    later = receiver.events()[3:]
    assert [e["data"]["request_id"] for e in later] == [second.id, second.id]
    assert len({e["id"] for e in receiver.events()}) == 5


def test_a_receiver_that_hangs_or_fails_holds_up_only_its_own_product(app, hooks, owner, admin):
    stuck, failing, fine = (live_product(owner, admin) for _ in range(3))
    hooks(stuck, owner, mode="hang")
    failer = hooks(failing, owner, mode="fail")
    ok = hooks(fine, owner)
    for product in (stuck, failing, fine):
        a_change(db.session.get(type(product), product.id), owner)
    # The fine receiver gets both events while the other two are still being tried.
    eventually(lambda: len(ok.events()) == 2, timeout=10)
    db.session.rollback()
    stuck_ones = db.session.scalars(
        select(WebhookDelivery).join(WebhookDelivery.webhook).where(
            WebhookDelivery.webhook.has(product_id=stuck.id))
    ).all()  # fmt: skip
    assert {d.status for d in stuck_ones} == {"pending"}
    assert all(d.attempts == 0 for d in stuck_ones)  # the first still waits for an answer
    # The failing one is retried with backoff, and records the 500.
    eventually(lambda: len(failer.events()) >= 2, timeout=10)
    db.session.rollback()
    failed = db.session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.webhook.has(product_id=failing.id))
    ).all()
    assert any(d.last_status_code == 500 for d in failed)


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hooks",
        "https://10.1.2.3/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hooks",
        "https://192.168.0.10:8443/x",
        "http://example.com/hooks",
        "ftp://example.com/hooks",
        "https://user:pass@example.com/hooks",
    ],
)
def test_targets_on_private_networks_and_odd_urls_are_refused(app, owner, admin, url):
    product = live_product(owner, admin)
    with pytest.raises(services.WebhookError):
        services.save(product, url, owner)


def test_an_allowed_network_is_taken(app, owner, admin):
    app.config.update(WEBHOOK_ALLOWED_NETWORKS=["10.0.0.0/8"])
    product = live_product(owner, admin)
    hook, secret = services.save(product, "https://10.1.2.3/hooks", owner)
    assert secret.startswith("whsec_") and hook.url == "https://10.1.2.3/hooks"


def test_the_team_sets_the_webhook_and_sees_its_deliveries(app, client, owner, admin):
    app.config.update(WEBHOOK_ALLOWED_NETWORKS=["127.0.0.0/8"], WEBHOOK_ALLOW_HTTP=True)
    product = live_product(owner, admin)
    builders.login(client, owner)
    made = builders.post(client, f"/products/{product.licence_plate}/webhook",
                         {"url": "http://127.0.0.1:9/hooks"})  # fmt: skip
    assert made.status_code == 200
    html = made.get_data(as_text=True)
    secret = html.split('id="webhook-secret" type="text" readonly value="')[1].split('"')[0]
    assert secret.startswith("whsec_")
    a_change(db.session.get(type(product), product.id), owner)
    sender.deliver(db.session.scalars(select(WebhookDelivery.id)).first())
    page = client.get(f"/products/{product.licence_plate}").get_data(as_text=True)
    assert "request.submitted" in page and "ConnectionError" in page and secret not in page
    [first] = db.session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()[:1]
    first.status = "failed"
    db.session.commit()
    again = builders.post(
        client, f"/products/{product.licence_plate}/webhook/deliveries/{first.id}/send-again"
    )
    assert again.status_code == 303
    db.session.expire_all()
    assert db.session.get(WebhookDelivery, first.id).status == "pending"
