"""JetStream -> database: the provisioner's status reports, against a real nats-server.

Each report is applied once, never backwards, whatever the order, the repeats and the number
of bridges; a report that cannot be applied is kept as a dead letter and never redelivered.
"""

import json
import threading
import time
from types import SimpleNamespace

import pytest
from markupsafe import escape
from nats.js.errors import NotFoundError
from sqlalchemy import func, select

from registry import contract
from registry.extensions import db
from registry.outbox.models import OutboxMessage
from registry.products.models import Product, ProductStatus
from registry.provisioning import bridge
from registry.provisioning import reports as status_reports
from registry.provisioning.models import DeadLetter, ProvisioningTarget
from registry.requests import services
from registry.requests.models import Request, RequestEvent, RequestStatus
from tests import builders
from tests.support import eventually, run_async

S = RequestStatus
STREAM, DURABLE = "REGISTRY", "registry-bridge"


@pytest.fixture
def spy(monkeypatch):
    """Records, by thread, each start of a bridge's consume loop (a second start means the loop
    died and was started again) and each report a bridge handled, with its verdict."""
    consume, handle_reports = bridge.consume, bridge.handle_reports
    seen = SimpleNamespace(starts=[], handled=[])

    async def counted_consume(*args, **kwargs):
        seen.starts.append(threading.get_ident())
        return await consume(*args, **kwargs)

    def recorded_handle_reports(*args, **kwargs):
        verdicts = handle_reports(*args, **kwargs)
        seen.handled.extend((threading.get_ident(), verdict) for verdict in verdicts)
        return verdicts

    monkeypatch.setattr(bridge, "consume", counted_consume)
    monkeypatch.setattr(bridge, "handle_reports", recorded_handle_reports)
    return seen


# --- helpers ------------------------------------------------------------------------------


def _approved(owner, admin, **overrides) -> tuple[int, str]:
    """An approved create request, committed: its id and its product's licence plate."""
    req = builders.submit(owner, **overrides)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    return req.id, req.product.licence_plate


def _encode(body) -> bytes:
    return body if isinstance(body, bytes) else json.dumps(body).encode()


def _publish(nats_server, *bodies) -> None:
    """Publish status reports as the provisioner does, in this order, on one connection."""

    async def send(js):
        for body in bodies:
            await js.publish(contract.STATUS_SUBJECT, _encode(body))

    run_async(send, nats_server.url)


def _consumer(nats_server):
    """The bridge's durable consumer, or None before a bridge has bound it."""

    async def info(js):
        try:
            return await js.consumer_info(STREAM, DURABLE)
        except NotFoundError:
            return None

    return run_async(info, nats_server.url)


def _drained(nats_server, delivered: int | None = None, published: int | None = None):
    """Every published report has been handled and acknowledged (or terminated): nothing waits
    to be delivered, nothing waits for an ack. With ``delivered``, also that exactly that many
    deliveries were made: no report was delivered twice. With ``published``, that the last of
    that many reports was reached (a step that skipped an earlier one may have been put back
    while it waited for it)."""
    info = _consumer(nats_server)
    if info is None or info.num_pending or info.num_ack_pending:
        return None
    if delivered is not None:
        assert info.delivered.consumer_seq == delivered, info
    if published is not None and info.delivered.stream_seq != published:
        return None
    return info


def _request(request_id) -> Request:
    db.session.expire_all()
    return db.session.get(Request, request_id)


def _status(request_id) -> str:
    return _request(request_id).status


def _events(request_id) -> list[RequestEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id)
        )
    )


def _step_events(request_id, step) -> int:
    db.session.expire_all()
    return db.session.scalar(
        select(func.count())
        .select_from(RequestEvent)
        .where(RequestEvent.request_id == request_id, RequestEvent.step == step)
    )


def _target(request_id, cluster) -> ProvisioningTarget:
    db.session.expire_all()
    return db.session.scalar(
        select(ProvisioningTarget).where(
            ProvisioningTarget.request_id == request_id, ProvisioningTarget.cluster == cluster
        )
    )


def _dead_letters() -> list[DeadLetter]:
    db.session.expire_all()
    return list(db.session.scalars(select(DeadLetter).order_by(DeadLetter.id)))


def _outbox(request_id) -> list[OutboxMessage]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.request_id == request_id)
            .order_by(OutboxMessage.id)
        )
    )


def _holds_for(seconds: float, check) -> None:
    """``check`` stays true for ``seconds``: for what must NOT happen (a redelivery)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert check()
        time.sleep(0.1)


def _apply(plate, cluster, request_id, status, message="") -> status_reports.Outcome:
    """One report through the service, as the bridge would apply it; committed."""
    body = contract.report_body(plate, cluster, request_id, status, message)
    outcome = status_reports.apply_report(contract.parse_report(json.dumps(body)))
    db.session.commit()
    return outcome


# --- over NATS ----------------------------------------------------------------------------


def test_a_report_delivered_three_times_changes_the_request_once(
    nats_server, nats_worker, owner, admin
):
    request_id, plate = _approved(owner, admin)
    nats_worker(relay=False, bridge=True)
    body = contract.report_body(plate, "silver", request_id, "workflow_started", "Started.")

    _publish(nats_server, body, body, body)

    eventually(lambda: _drained(nats_server, delivered=3))
    assert _step_events(request_id, "workflow_started") == 1
    assert _status(request_id) == S.PROVISIONING
    assert _target(request_id, "silver").step == "workflow_started"
    assert _dead_letters() == []


def test_steps_out_of_order_change_the_request_once_and_never_backwards(
    nats_server, nats_worker, owner, admin
):
    request_id, plate = _approved(owner, admin)
    nats_worker(relay=False, bridge=True)

    _publish(
        nats_server,
        *(
            contract.report_body(plate, "silver", request_id, step)
            for step in ("manifests_committed", "workflow_started", "acs_account_created")
        ),
    )

    eventually(lambda: _drained(nats_server, published=3))
    # manifests_committed came first but waited for the two steps before it: the timeline
    # has each step once, in the order of the workflow.
    steps = [(e.to_status, e.step) for e in _events(request_id) if e.step]
    assert steps == [
        ("provisioning", "workflow_started"),
        ("provisioning", "acs_account_created"),
        ("provisioning", "manifests_committed"),
    ]
    assert _target(request_id, "silver").step == "manifests_committed"
    assert _status(request_id) == S.PROVISIONING
    assert _dead_letters() == []

    # A step older than the furthest one, arriving now, changes nothing.
    _publish(nats_server, contract.report_body(plate, "silver", request_id, "workflow_started"))
    eventually(lambda: _drained(nats_server, published=4))
    assert [e.step for e in _events(request_id) if e.step] == [s for _, s in steps]
    assert _target(request_id, "silver").step == "manifests_committed"


def test_a_step_whose_predecessors_never_come_is_applied_after_a_short_wait(
    nats_server, nats_worker, owner, admin
):
    """A pipeline that reports only "provisioned" (as the real GitHub Action did) still works."""
    request_id, plate = _approved(owner, admin)
    nats_worker(relay=False, bridge=True)
    _publish(nats_server, contract.report_body(plate, "silver", request_id, "provisioned"))
    eventually(lambda: _status(request_id) == S.PROVISIONED, timeout=10)
    assert [e.step for e in _events(request_id) if e.step] == ["provisioned"]


def test_a_gold_product_is_provisioned_once_both_clusters_report(
    nats_server, nats_worker, owner, admin
):
    request_id, plate = _approved(owner, admin, cluster_name="gold")
    nats_worker(relay=False, bridge=True)
    gold = contract.report_body(plate, "gold", request_id, "provisioned")
    golddr = contract.report_body(plate, "golddr", request_id, "provisioned")

    _publish(nats_server, gold)
    eventually(lambda: _status(request_id) == S.PARTIALLY_PROVISIONED)
    assert _target(request_id, "gold").is_provisioned
    assert _target(request_id, "golddr").step is None
    assert _request(request_id).product.status == ProductStatus.BEING_CREATED

    _publish(nats_server, golddr)
    eventually(lambda: _status(request_id) == S.PROVISIONED)
    assert _request(request_id).product.status == ProductStatus.ACTIVE
    eventually(lambda: _drained(nats_server, published=2))
    timeline = [(e.to_status, e.cluster) for e in _events(request_id)]
    assert timeline[-2:] == [("partially_provisioned", "gold"), ("provisioned", "golddr")]

    # Both again: a provisioned request takes them as harmless repeats.
    _publish(nats_server, gold, golddr)
    eventually(lambda: _drained(nats_server, published=4))
    assert [(e.to_status, e.cluster) for e in _events(request_id)] == timeline
    assert _status(request_id) == S.PROVISIONED
    assert _dead_letters() == []


def test_a_failure_is_shown_and_a_re_sent_request_is_provisioned(
    nats_server, nats_worker, owner, admin, client
):
    request_id, plate = _approved(owner, admin)
    worker = nats_worker(relay=False, bridge=True)
    reason = "Quota service unavailable: could not create the namespaces."
    _publish(
        nats_server,
        contract.report_body(plate, "silver", request_id, "workflow_started"),
        contract.report_body(plate, "silver", request_id, "failed", reason),
    )

    eventually(lambda: _status(request_id) == S.FAILED)
    failed = _events(request_id)[-1]
    assert (failed.from_status, failed.to_status) == ("provisioning", "failed")
    assert (failed.note, failed.cluster, failed.step) == (reason, "silver", "workflow_started")
    assert _target(request_id, "silver").failed_reason == reason
    [first_message] = _outbox(request_id)

    builders.login(client, admin)
    response = builders.post(client, f"/admin/requests/{request_id}/resend")
    assert response.status_code == 303
    req = _request(request_id)
    assert (req.status, req.attempt) == (S.APPROVED, 2)
    assert _events(request_id)[-1].actor_id == admin.id
    messages = _outbox(request_id)
    assert [m.id for m in messages[:1]] == [first_message.id]
    [second_message] = messages[1:]
    assert second_message.subject == "registry_project_provisioning_silver"
    assert second_message.status == "pending"
    assert second_message.payload["workflow"] == f"silver-{plate}-{request_id}"
    target = _target(request_id, "silver")
    assert (target.attempt, target.step, target.failed_reason) == (2, None, None)

    _publish(nats_server, contract.report_body(plate, "silver", request_id, "provisioned"))
    eventually(lambda: _status(request_id) == S.PROVISIONED)
    assert _request(request_id).product.status == ProductStatus.ACTIVE
    assert worker.is_alive()
    assert _dead_letters() == []


def test_reports_that_cannot_be_applied_are_dead_lettered_once_and_the_bridge_goes_on(
    nats_server, nats_worker, owner, admin, support, client, spy
):
    pending = builders.submit(owner)  # not approved: the provisioner has nothing of it
    request_id, plate = _approved(owner, admin)
    assert db.session.scalar(select(Product).where(Product.licence_plate == "fedcba")) is None
    good = [
        contract.report_body(plate, "silver", request_id, step, f"Step {n}.")
        for n, step in enumerate(contract.STEPS[:4], start=1)
    ]
    no_workflow = dict(good[0])
    del no_workflow["workflow"]
    bad = [
        b"{not json",
        no_workflow,
        contract.report_body("fedcba", "silver", 999, "workflow_started", "<b>not ours</b>"),
        contract.report_body(pending.product.licence_plate, "silver", pending.id, "provisioned"),
    ]
    worker = nats_worker(relay=False, bridge=True)

    # Each dead letter is followed by a good report, which the same bridge must apply.
    _publish(nats_server, *(m for pair in zip(bad, good, strict=True) for m in pair))

    eventually(lambda: _step_events(request_id, "pull_request_merged") == 1)
    eventually(lambda: _drained(nats_server, delivered=8))
    assert [e.step for e in _events(request_id) if e.step] == list(contract.STEPS[:4])
    assert _status(request_id) == S.PROVISIONING
    assert _status(pending.id) == S.PENDING

    letters = sorted(_dead_letters(), key=lambda d: d.stream_sequence)
    reasons = [d.reason for d in letters]
    assert reasons[0].startswith("malformed JSON: ")
    assert reasons[1:] == [
        "missing field: workflow",
        "unknown licence plate: no product has it",
        f"request {pending.id} has no provisioning on the reported cluster (status pending)",
    ]
    assert [d.data for d in letters] == [_encode(b).decode() for b in bad]
    assert [d.stream_sequence for d in letters] == [1, 3, 5, 7]
    assert {(d.source, d.subject, d.delivered) for d in letters} == {
        ("nats", contract.STATUS_SUBJECT, 1)
    }

    # Terminated, not left to come back: nothing pending, nothing redelivered.
    _holds_for(2.0, lambda: len(_dead_letters()) == 4 and _drained(nats_server, delivered=8))
    # One bridge, one consume loop from start to end: no message brought it down.
    assert worker.is_alive()
    assert spy.starts == [worker.ident]
    verdicts = [verdict for _, verdict in spy.handled]
    assert verdicts == [bridge.TERM, bridge.ACK] * 4

    builders.login(client, support)
    response = client.get("/admin/dead-letters")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    for reason in reasons:
        assert str(escape(reason)) in html
    assert "&lt;b&gt;not ours&lt;/b&gt;" in html
    assert "<b>not ours</b>" not in html


def test_two_bridges_apply_two_hundred_reports_each_exactly_once(
    nats_server, nats_worker, owner, admin, spy
):
    requests = [_approved(owner, admin) for _ in range(25)]
    bridges = [nats_worker(relay=False, bridge=True) for _ in range(2)]
    # In order for each request, interleaved across requests: every request's first step,
    # then every request's second step, and so on.
    bodies = [
        contract.report_body(plate, "silver", request_id, step)
        for step in contract.STEPS
        for request_id, plate in requests
    ]
    assert len(bodies) == 200

    _publish(nats_server, *bodies)

    ids = [request_id for request_id, _ in requests]

    def all_provisioned():
        db.session.expire_all()
        statuses = db.session.scalars(select(Request.status).where(Request.id.in_(ids))).all()
        return len(statuses) == 25 and set(statuses) == {S.PROVISIONED}

    eventually(all_provisioned, timeout=60, interval=0.2, message="not every request provisioned")
    eventually(lambda: _drained(nats_server), timeout=30)
    db.session.expire_all()
    rows = db.session.execute(
        select(RequestEvent.request_id, RequestEvent.step, func.count())
        .where(RequestEvent.request_id.in_(ids), RequestEvent.step.is_not(None))
        .group_by(RequestEvent.request_id, RequestEvent.step)
    ).all()
    per_request = {request_id: set() for request_id in ids}
    for request_id, step, count in rows:
        assert count == 1, f"request {request_id}: {count} events for {step}"
        per_request[request_id].add(step)
    lost = {r: set(contract.STEPS) - steps for r, steps in per_request.items() if steps}
    lost = {r: sorted(steps) for r, steps in lost.items() if steps}
    assert lost == {}, f"step events lost (applied out of order): {lost}"
    assert _dead_letters() == []
    assert all(bridge.is_alive() for bridge in bridges)
    # Both bridges took part, and neither's consume loop died on the way.
    assert {thread for thread, _ in spy.handled} == {bridge.ident for bridge in bridges}
    assert sorted(spy.starts) == sorted(bridge.ident for bridge in bridges)


def test_a_report_that_keeps_failing_is_set_aside_and_holds_up_nothing(
    nats_server, nats_worker, owner, admin, spy, monkeypatch
):
    stuck_id, stuck_plate = _approved(owner, admin)
    request_id, plate = _approved(owner, admin)
    apply_report = status_reports.apply_report

    def failing_for_one_request(report, *args, **kwargs):
        if report.request_id == stuck_id:
            raise RuntimeError("a bug no rule foresaw")
        return apply_report(report, *args, **kwargs)

    monkeypatch.setattr(status_reports, "apply_report", failing_for_one_request)
    # Both wait in the stream before the bridge starts, so they arrive in one batch: the good
    # one must not wait for the ack timeout (30 s) because the other broke the batch.
    _publish(
        nats_server,
        contract.report_body(stuck_plate, "silver", stuck_id, "workflow_started"),
        contract.report_body(plate, "silver", request_id, "workflow_started"),
    )
    worker = nats_worker(relay=False, bridge=True)

    eventually(lambda: _status(request_id) == S.PROVISIONING, timeout=10)
    bad = bridge.MAX_DELIVERIES
    [letter] = eventually(_dead_letters)
    assert (
        letter.reason == f"not applied after {bad} deliveries: RuntimeError: a bug no rule foresaw"
    )
    assert (letter.stream_sequence, letter.delivered) == (1, bad)
    eventually(lambda: _drained(nats_server, delivered=bad + 1))
    assert _status(stuck_id) == S.APPROVED
    assert worker.is_alive()
    assert spy.starts == [worker.ident]


def test_an_existing_bridge_consumer_is_brought_up_to_date(nats_app, nats_server, nats_worker):
    from nats.js.api import AckPolicy, ConsumerConfig

    async def older_consumer(js):
        await js.add_consumer(
            STREAM,
            ConsumerConfig(
                name=DURABLE,
                durable_name=DURABLE,
                ack_policy=AckPolicy.EXPLICIT,
                ack_wait=5,
                filter_subject=contract.STATUS_SUBJECT,
            ),
        )

    run_async(older_consumer, nats_server.url)
    assert _consumer(nats_server).config.ack_wait != 30

    nats_worker(relay=False, bridge=True)

    eventually(lambda: _consumer(nats_server).config.ack_wait == 30)
    assert _consumer(nats_server).config.max_ack_pending == 1000


# --- the service, without NATS ------------------------------------------------------------


def test_a_repeated_step_is_not_applied_again(owner, admin):
    request_id, plate = _approved(owner, admin)
    first = _apply(plate, "silver", request_id, "workflow_started")
    again = _apply(plate, "silver", request_id, "workflow_started")
    assert first.applied is True
    assert again == status_reports.Outcome(False, request_id, "provisioning", "step already passed")
    assert _step_events(request_id, "workflow_started") == 1


def test_a_report_for_a_cluster_the_request_is_not_on_is_refused(owner, admin):
    request_id, plate = _approved(owner, admin)
    before = len(_events(request_id))
    with pytest.raises(status_reports.NotAwaiting, match="no provisioning on the reported cluster"):
        _apply(plate, "gold", request_id, "provisioned")
    db.session.rollback()
    assert len(_events(request_id)) == before
    assert _status(request_id) == S.APPROVED


def test_a_failure_after_a_cluster_is_provisioned_is_ignored(owner, admin):
    request_id, plate = _approved(owner, admin, cluster_name="gold")
    _apply(plate, "gold", request_id, "provisioned")
    before = len(_events(request_id))

    outcome = _apply(plate, "gold", request_id, "failed", "late failure")

    assert outcome.applied is False
    assert outcome.detail == "cluster already provisioned"
    assert len(_events(request_id)) == before
    assert _status(request_id) == S.PARTIALLY_PROVISIONED
    assert _target(request_id, "gold").failed_reason is None


def test_a_report_for_a_provisioned_request_is_ignored_not_dead_lettered(app, owner, admin):
    request_id, plate = _approved(owner, admin)
    _apply(plate, "silver", request_id, "provisioned")
    before = len(_events(request_id))

    for status in ("workflow_started", "provisioned", "failed"):
        outcome = _apply(plate, "silver", request_id, status, "straggler")
        assert outcome == status_reports.Outcome(
            False, request_id, "provisioned", "request no longer in flight"
        )
    body = contract.report_body(plate, "silver", request_id, "failed", "straggler")
    assert bridge.handle_report(app, _encode(body)) == bridge.ACK

    assert len(_events(request_id)) == before
    assert _status(request_id) == S.PROVISIONED
    assert _dead_letters() == []


@pytest.mark.parametrize("decision", ["rejected", "cancelled"])
def test_a_report_for_a_request_that_was_never_approved_is_dead_lettered(
    app, owner, admin, decision
):
    req = builders.submit(owner)
    if decision == "rejected":
        services.decide(req.id, admin, approve=False, comment="Use the existing product.")
    else:
        services.cancel(req.id, owner)
    db.session.commit()
    body = contract.report_body(req.product.licence_plate, "silver", req.id, "provisioned")

    assert bridge.handle_report(app, _encode(body), contract.STATUS_SUBJECT, 7, 1) == (bridge.TERM)

    [letter] = _dead_letters()
    assert letter.reason == (
        f"request {req.id} has no provisioning on the reported cluster (status {decision})"
    )
    assert (letter.stream_sequence, letter.delivered) == (7, 1)
    assert _status(req.id) == decision


def _malformed(name, plate, request_id) -> bytes:
    body = contract.report_body(plate, "silver", request_id, "workflow_started")
    if name == "a raw NUL byte":
        return b"\x00"
    if name == "JSON nested too deeply":
        return b"[" * 100_000
    if name == "a request id in superscript digits":
        body["workflow"] = f"silver-{plate}-\u00b2"
    elif name == "a request id too large for any column":
        body["workflow"] = f"silver-{plate}-{10**30}"
    elif name == "a time that is year 0 in UTC":
        body["occurred_at"] = "0001-01-01T00:00:00+01:00"
    elif name == "a workflow as long as a body may be":
        body["workflow"] = f"silver-{plate}-{request_id}" + "9" * 900_000
    elif name == "a NUL in the licence plate":
        body["prefix"] = f"{plate}\x00"
        body["workflow"] = f"silver-{plate}\x00-{request_id}"
    return json.dumps(body).encode()


MALFORMED = {
    "a raw NUL byte": "malformed JSON: ",
    "JSON nested too deeply": "the JSON is nested too deeply",
    "a request id in superscript digits": "is not <cluster>-<licencePlate>-<requestId>",
    "a request id too large for any column": "is not <cluster>-<licencePlate>-<requestId>",
    "a time that is year 0 in UTC": "occurred_at is not an ISO 8601 time in years 1-9999",
    "a workflow as long as a body may be": "field workflow is longer than 200 characters",
    "a NUL in the licence plate": "the JSON holds a NUL or a lone surrogate",
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_a_malformed_report_is_dead_lettered_at_once(app, owner, admin, name):
    request_id, plate = _approved(owner, admin)
    data = _malformed(name, plate, request_id)

    verdict = bridge.handle_report(app, data, contract.STATUS_SUBJECT, 3, 1)

    assert verdict == bridge.TERM
    [letter] = _dead_letters()
    assert MALFORMED[name] in letter.reason
    assert len(letter.reason) < 300  # never what was sent, whatever its size
    assert (letter.stream_sequence, letter.delivered) == (3, 1)
    assert _status(request_id) == S.APPROVED
    assert [e.step for e in _events(request_id) if e.step] == []


def test_an_unexpected_error_is_retried_then_dead_lettered(app, owner, admin, monkeypatch):
    request_id, plate = _approved(owner, admin)
    data = _encode(contract.report_body(plate, "silver", request_id, "workflow_started"))

    def broken(report, *args, **kwargs):
        raise KeyError("surprise")

    monkeypatch.setattr(status_reports, "apply_report", broken)
    last = bridge.MAX_DELIVERIES
    for delivered in range(1, last):
        assert bridge.handle_report(app, data, None, 9, delivered) == bridge.RETRY
    assert _dead_letters() == []

    assert bridge.handle_report(app, data, None, 9, last) == bridge.TERM

    [letter] = _dead_letters()
    assert letter.reason == f"not applied after {last} deliveries: KeyError: 'surprise'"
    assert _status(request_id) == S.APPROVED


# --- re-sending, without NATS -------------------------------------------------------------


def test_only_super_admins_re_send_a_failed_request(app, owner, admin, support, client):
    request_id, plate = _approved(owner, admin)
    _apply(plate, "silver", request_id, "failed", "Vault is down.")
    before = (len(_events(request_id)), len(_outbox(request_id)))

    for user in (support, owner):
        user_client = app.test_client()
        builders.login(user_client, user)
        response = builders.post(user_client, f"/admin/requests/{request_id}/resend")
        assert response.status_code == 403, user.email

    req = _request(request_id)
    assert (req.status, req.attempt) == (S.FAILED, 1)
    assert (len(_events(request_id)), len(_outbox(request_id))) == before


def test_a_provisioned_request_is_not_re_sent(owner, admin, client):
    request_id, plate = _approved(owner, admin)
    _apply(plate, "silver", request_id, "provisioned")
    before = (len(_events(request_id)), len(_outbox(request_id)))

    builders.login(client, admin)
    response = builders.post(client, f"/admin/requests/{request_id}/resend")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "A provisioned request cannot be re-sent." in page

    req = _request(request_id)
    assert (req.status, req.attempt) == (S.PROVISIONED, 1)
    assert (len(_events(request_id)), len(_outbox(request_id))) == before
