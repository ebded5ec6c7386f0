"""Approval -> outbox -> JetStream: the message of the contract, exactly once, whatever fails."""

import json

import pytest
from sqlalchemy import select

from registry.extensions import db
from registry.outbox.models import OutboxMessage
from registry.products.services import ContactData
from registry.provisioning import relay, stream
from registry.requests import services
from tests import builders
from tests.support import eventually, run_async


def _approve(owner, admin, **overrides):
    req = builders.submit(owner, **overrides)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    return req


def _stream_messages(app, url, subject=None):
    """Every message the stream holds (on ``subject``), as (subject, headers, body)."""

    async def read(js):
        info = await js.stream_info(app.config["NATS_STREAM"])
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            if info.state.messages == 0:
                break
            msg = await js.get_msg(app.config["NATS_STREAM"], seq)
            if subject is None or msg.subject == subject:
                found.append((msg.subject, msg.headers or {}, json.loads(msg.data)))
        return found

    return run_async(read, url)


def _outbox(request_id):
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.request_id == request_id)
            .order_by(OutboxMessage.id)
        )
    )


def test_an_approval_writes_one_message_with_the_contract_fields(
    nats_app, nats_server, nats_worker, owner, admin
):
    req = _approve(
        owner,
        admin,
        name='River "Crossing" \\ Permits',
        description='  Permits for "river" crossings \\ bridges.  ',
        ministry_code="PSSG",
        secondary_lead=ContactData("Sam", "Second", "sam.second@example.com"),
        quotas={
            "tools": dict(builders.DEFAULT_QUOTAS),
            "dev": dict(builders.DEFAULT_QUOTAS, cpu="cpu-request-1-limit-2"),
            "test": dict(builders.DEFAULT_QUOTAS, memory="memory-request-4-limit-8"),
            "prod": dict(builders.DEFAULT_QUOTAS, storage="storage-64"),
        },
    )
    nats_worker(bridge=False)
    [outbox] = eventually(lambda: [m for m in _outbox(req.id) if m.status == "sent"])

    [(subject, headers, body)] = _stream_messages(nats_app, nats_server.url)
    plate = req.product.licence_plate
    assert subject == "registry_project_provisioning_silver"
    assert headers["Nats-Msg-Id"] == outbox.message_id
    assert body["action"] == "create"
    assert body["profile_id"] == req.product_id
    assert body["licencePlate"] == plate
    assert body["cluster_id"] == 1
    assert body["cluster_name"] == "silver"
    assert body["workflow"] == f"silver-{plate}-{req.id}"
    assert body["display_name"] == "River Crossing  Permits"
    assert body["description"] == "Permits for river crossings  bridges."
    assert body["ministry_id"] == "PSSG"
    assert body["alliance"] == "JAG"
    assert body["merge_type"] == "auto"
    assert body["isContactChanged"] is False
    assert [n["name"] for n in body["namespaces"]] == [
        f"{plate}-tools",
        f"{plate}-dev",
        f"{plate}-test",
        f"{plate}-prod",
    ]
    dev, test, prod = body["namespaces"][1:]
    assert dev["quota"] == {
        "cpu": "cpu-request-1-limit-2",
        "memory": "memory-request-2-limit-4",
        "storage": "storage-1",
        "snapshot": "snapshot-5",
    }
    assert dev["quotas"]["cpu"] == {"requests": 1, "limits": 2}
    assert test["quotas"]["memory"] == {"requests": 4, "limits": 8}
    assert prod["quotas"]["storage"] == {
        "block": 64,
        "file": 64,
        "backup": 32,
        "capacity": 64,
        "pvc_count": 60,
    }
    assert prod["quotas"]["snapshot"] == {"count": 5}
    emails = {(c["email"], c["role"]) for c in body["contacts"]}
    contacts = {c.role: c.email for c in req.product.contacts}
    assert emails == {
        (contacts["owner"], "owner"),
        (contacts["primary_lead"], "lead"),
        ("sam.second@example.com", "lead"),
    }
    assert outbox.stream_sequence == 1


def test_a_ministry_outside_jag_is_alliance_none(nats_app, owner, admin):
    req = _approve(owner, admin, ministry_code="CITZ")
    [message] = _outbox(req.id)
    assert message.payload["alliance"] == "none"


def test_a_gold_product_sends_one_message_per_cluster(
    nats_app, nats_server, nats_worker, owner, admin
):
    req = _approve(owner, admin, cluster_name="gold")
    nats_worker(bridge=False)
    eventually(lambda: all(m.status == "sent" for m in _outbox(req.id)))

    found = _stream_messages(nats_app, nats_server.url)
    plate = req.product.licence_plate
    assert sorted((s, b["cluster_name"], b["cluster_id"], b["workflow"]) for s, _, b in found) == [
        ("registry_project_provisioning_gold", "gold", 2, f"gold-{plate}-{req.id}"),
        ("registry_project_provisioning_golddr", "golddr", 3, f"golddr-{plate}-{req.id}"),
    ]
    assert len({h["Nats-Msg-Id"] for _, h, _ in found}) == 2


def test_a_rejection_sends_nothing(nats_app, owner, admin):
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=False, comment="No.")
    db.session.commit()
    assert _outbox(req.id) == []


def test_approvals_while_nats_is_down_are_published_once_it_is_back(
    nats_app, nats_server, nats_worker, owner, admin, client
):
    nats_server.stop()
    try:
        builders.login(client, admin)
        requests = [builders.submit(owner) for _ in range(3)]
        for req in requests:
            # The admin's approval succeeds although NATS is away.
            response = builders.post(
                client, f"/admin/requests/{req.id}/decision", {"decision": "approve"}
            )
            assert response.status_code == 303
        worker = nats_worker(bridge=False, wait=False)
        assert not worker.ready.wait(1.5)  # still trying to reach NATS
        assert all(m.status == "pending" for r in requests for m in _outbox(r.id))
    finally:
        nats_server.start()
    assert worker.ready.wait(20)
    eventually(lambda: all(m.status == "sent" for r in requests for m in _outbox(r.id)))

    found = _stream_messages(nats_app, nats_server.url)
    assert sorted(b["workflow"] for _, _, b in found) == sorted(
        f"silver-{r.product.licence_plate}-{r.id}" for r in requests
    )


def test_a_relay_killed_between_publish_and_marking_sent_stores_no_second_message(
    nats_app, nats_server, owner, admin
):
    req = _approve(owner, admin)
    [message] = _outbox(req.id)

    # A relay published, then died before it could mark the row sent.
    first = run_async(lambda js: relay.publish(js, message), nats_server.url)
    assert not first.duplicate
    db.session.rollback()
    assert _outbox(req.id)[0].status == "pending"

    # The next relay publishes the row again: JetStream recognises the Nats-Msg-Id.
    sent = run_async(lambda js: relay.relay_once(js, nats_app), nats_server.url)
    assert sent == 1
    [message] = _outbox(req.id)
    assert message.status == "sent"
    assert message.stream_sequence == first.seq
    assert len(_stream_messages(nats_app, nats_server.url)) == 1


def test_the_relay_is_woken_by_the_commit_not_by_its_poll(nats_app, nats_worker, owner, admin):
    nats_app.config["NATS_RELAY_POLL_SECONDS"] = 120
    nats_worker(bridge=False)
    req = _approve(owner, admin)
    eventually(lambda: _outbox(req.id) and _outbox(req.id)[0].status == "sent", timeout=5)


def test_the_stream_is_created_and_its_subjects_kept_up_to_date(nats_app, nats_server):
    async def check(js):
        await js.delete_stream(nats_app.config["NATS_STREAM"])
        await stream.ensure_stream(js, nats_app)  # created when missing
        await stream.ensure_stream(js, nats_app)  # and left as it is when present
        return await js.stream_info(nats_app.config["NATS_STREAM"])

    info = run_async(check, nats_server.url)
    assert info.config.subjects == [
        "registry_project_provisioning_silver",
        "registry_project_provisioning_gold",
        "registry_project_provisioning_golddr",
        "registry_project_provisioning_emerald",
        "registry_project_provisioning_klab",
        "registry_project_provisioning_klab2",
        "registry_project_provisioning_clab",
        "registry_project_provisioning_status",
    ]
    assert info.config.duplicate_window == pytest.approx(3600)


def test_a_new_cluster_joins_the_stream_at_the_next_start(nats_app, nats_server):
    from registry.reference.models import Cluster

    db.session.add(Cluster(name="ruby", number=8, display_name="Ruby Hosting Tier"))
    db.session.commit()
    info = run_async(lambda js: _ensure_then_info(js, nats_app), nats_server.url)
    assert "registry_project_provisioning_ruby" in info.config.subjects


async def _ensure_then_info(js, app):
    await stream.ensure_stream(js, app)
    return await js.stream_info(app.config["NATS_STREAM"])
