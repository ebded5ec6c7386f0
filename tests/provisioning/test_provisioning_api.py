"""The provisioner's side of the registry, by hand and over HTTP: the bearer-token callback
``PUT /api/v1/provision/namespace``, the ``service-accounts`` and ``provisioner-report``
commands, and the product page's line about the request in flight.
"""

import hashlib
import html
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text

from registry import contract
from registry.auth import service_accounts as machine_accounts
from registry.auth.models import ServiceAccount
from registry.extensions import db
from registry.products.models import Product, ProductStatus
from registry.products.services import ProductData, live_data
from registry.requests import services
from registry.requests.models import Request, RequestEvent, RequestStatus
from tests import builders
from tests.builders import report
from tests.support import in_a_thread, run_async

S = RequestStatus
CALLBACK = "/api/v1/provision/namespace"
TOKEN_PATTERN = re.compile(r"\bprs_[A-Za-z0-9_-]{20,}")


# --- helpers -------------------------------------------------------------------------------------


def approve(owner, admin, **overrides) -> Request:
    req = builders.submit(owner, **overrides)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    return req


def fresh(request_id: int) -> Request:
    """The request as the database has it now: each client call ran in a session of its own."""
    db.session.expire_all()
    return db.session.get(Request, request_id)


def events(request_id: int) -> list[RequestEvent]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id)
        )
    )


def put(client, body=None, token: str | None = None, **kwargs):
    headers = kwargs.pop("headers", {})
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if body is not None:
        kwargs["json"] = body
    return client.put(CALLBACK, headers=headers, **kwargs)


def body_for(req: Request, cluster: str | None = None) -> dict:
    return {"prefix": req.product.licence_plate, "clusterName": cluster or req.product.cluster_name}


@pytest.fixture
def token(app) -> str:
    """The bearer token of an active provisioner service account."""
    _, token = machine_accounts.create_service_account("pipeline")
    db.session.commit()
    return token


def assert_json_error(response, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    error = response.get_json()["error"]
    assert isinstance(error, str)
    assert error.strip()
    return error


# --- the HTTP callback: success ------------------------------------------------------------------


def test_the_callback_provisions_an_approved_silver_request(client, owner, admin, token):
    req = approve(owner, admin)
    before = len(events(req.id))

    response = put(client, body_for(req), token)

    assert response.status_code == 204
    assert response.get_data() == b""
    req = fresh(req.id)
    assert req.status == S.PROVISIONED
    assert req.product.status == ProductStatus.ACTIVE
    new = events(req.id)[before:]
    assert [(e.from_status, e.to_status, e.step, e.cluster, e.actor_id) for e in new] == [
        (S.APPROVED, S.PROVISIONED, "provisioned", "silver", None)
    ]
    [target] = req.targets
    assert (target.cluster, target.step) == ("silver", "provisioned")
    account = db.session.scalar(select(ServiceAccount).filter_by(name="pipeline"))
    assert account.last_used_at is not None


def test_a_gold_request_needs_a_callback_from_gold_and_from_golddr(client, owner, admin, token):
    req = approve(owner, admin, cluster_name="gold")

    assert put(client, body_for(req, "gold"), token).status_code == 204
    assert fresh(req.id).status == S.PARTIALLY_PROVISIONED
    assert fresh(req.id).product.status == ProductStatus.BEING_CREATED
    last = events(req.id)[-1]
    assert (last.to_status, last.cluster) == (S.PARTIALLY_PROVISIONED, "gold")

    # gold again is a repeat: nothing moves.
    count = len(events(req.id))
    assert put(client, body_for(req, "gold"), token).status_code == 204
    assert len(events(req.id)) == count
    assert fresh(req.id).status == S.PARTIALLY_PROVISIONED

    assert put(client, body_for(req, "golddr"), token).status_code == 204
    req = fresh(req.id)
    assert req.status == S.PROVISIONED
    assert req.product.status == ProductStatus.ACTIVE
    assert sorted((t.cluster, t.step) for t in req.targets) == [
        ("gold", "provisioned"),
        ("golddr", "provisioned"),
    ]
    assert [e.cluster for e in events(req.id) if e.step == "provisioned"] == ["gold", "golddr"]


def test_a_repeated_callback_after_provisioned_changes_nothing(client, owner, admin, token):
    req = approve(owner, admin)
    assert put(client, body_for(req), token).status_code == 204
    provisioned = fresh(req.id)
    count, updated_at = len(events(req.id)), provisioned.updated_at

    for _ in range(2):
        assert put(client, body_for(req), token).status_code == 204

    req = fresh(req.id)
    assert req.status == S.PROVISIONED
    assert req.updated_at == updated_at
    assert len(events(req.id)) == count
    assert [e.to_status for e in events(req.id)].count(S.PROVISIONED) == 1


def test_the_callback_needs_no_csrf_token_but_forms_still_do(client, owner, admin, token):
    """The bearer API is exempt from CSRF; the protection stays on for the browser's forms."""
    req = approve(owner, admin)
    builders.login(client, admin)
    # The same signed-in client: a form POST without the token is refused...
    response = client.post(f"/admin/requests/{req.id}/resend")
    assert response.status_code == 400
    assert fresh(req.id).attempt == 1
    # ...while the PUT, with a bearer token and no CSRF token, goes through.
    assert put(client, body_for(req), token).status_code == 204
    assert fresh(req.id).status == S.PROVISIONED


# --- the HTTP callback: who may call it ----------------------------------------------------------


@pytest.fixture
def inactive_token(app) -> str:
    account, token = machine_accounts.create_service_account("retired-pipeline")
    account.active = False
    db.session.commit()
    return token


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param("Bearer ", id="bearer-empty"),
        pytest.param("Bearer prs_not-a-token-we-issued-000000000000", id="unknown-token"),
        pytest.param("Basic {token}", id="right-token-wrong-scheme"),
        pytest.param("{token}", id="token-without-scheme"),
        pytest.param("Bearer {token}x", id="token-with-a-character-more"),
        pytest.param("Bearer {hash}", id="the-stored-hash"),
        pytest.param("Bearer {inactive}", id="inactive-account"),
    ],
)
def test_the_callback_refuses_a_caller_without_a_valid_token(
    client, owner, admin, token, inactive_token, authorization
):
    req = approve(owner, admin)
    count = len(events(req.id))
    headers = {}
    if authorization is not None:
        headers["Authorization"] = authorization.format(
            token=token, inactive=inactive_token, hash=machine_accounts.hash_token(token)
        )

    response = put(client, body_for(req), headers=headers)

    assert_json_error(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert fresh(req.id).status == S.APPROVED
    assert len(events(req.id)) == count


def test_a_signed_in_super_admin_without_a_token_is_refused(client, owner, admin):
    req = approve(owner, admin)
    builders.login(client, admin)
    assert client.get("/admin/queue").status_code == 200  # the session works for pages

    response = put(client, body_for(req), headers={"X-CSRFToken": builders.csrf_token(client)})

    assert_json_error(response, 401)
    assert "WWW-Authenticate" in response.headers
    assert fresh(req.id).status == S.APPROVED


# --- the HTTP callback: what it refuses ----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        pytest.param(
            {"data": "prefix=abcdef", "content_type": "application/json"}, "JSON", id="not-json"
        ),
        pytest.param(
            {"data": '{"prefix": "abc', "content_type": "application/json"}, "JSON", id="cut-off"
        ),
        pytest.param({}, "JSON", id="no-body"),
        pytest.param({"json": ["{plate}", "silver"]}, "JSON object", id="json-array"),
        pytest.param({"json": "{plate}"}, "JSON object", id="json-string"),
        pytest.param({"json": {"clusterName": "silver"}}, "prefix", id="missing-prefix"),
        pytest.param({"json": {"prefix": "{plate}"}}, "clusterName", id="missing-clusterName"),
        pytest.param({"json": {"prefix": "", "clusterName": "silver"}}, "prefix", id="empty"),
        pytest.param(
            {"json": {"prefix": "{plate}", "clusterName": "   "}}, "clusterName", id="blank"
        ),
        pytest.param({"json": {"prefix": 123456, "clusterName": "silver"}}, "prefix", id="number"),
        pytest.param(
            {"json": {"prefix": "{plate}", "clusterName": None}}, "clusterName", id="null"
        ),
    ],
)
def test_the_callback_refuses_a_bad_body(client, owner, admin, token, kwargs, reason):
    req = approve(owner, admin)
    count = len(events(req.id))
    plate = req.product.licence_plate

    def fill(value):
        if isinstance(value, str):
            return value.replace("{plate}", plate)
        if isinstance(value, list):
            return [fill(v) for v in value]
        if isinstance(value, dict):
            return {k: fill(v) for k, v in value.items()}
        return value

    response = put(client, token=token, **{k: fill(v) for k, v in kwargs.items()})

    assert reason in assert_json_error(response, 400)
    assert fresh(req.id).status == S.APPROVED
    assert len(events(req.id)) == count


def test_an_unknown_licence_plate_is_not_found(client, owner, admin, token):
    req = approve(owner, admin)
    plate = "fedcba" if req.product.licence_plate != "fedcba" else "abcdef"

    response = put(client, {"prefix": plate, "clusterName": "silver"}, token)

    assert assert_json_error(response, 404) == "unknown licence plate: no product has it"
    assert fresh(req.id).status == S.APPROVED


@pytest.mark.parametrize("decision", ["pending", "rejected", "cancelled"])
def test_a_request_not_waiting_for_the_provisioner_is_a_conflict(
    client, owner, admin, token, decision
):
    req = builders.submit(owner)
    if decision == "rejected":
        services.decide(req.id, admin, approve=False, comment="Not this quarter.")
    elif decision == "cancelled":
        services.cancel(req.id, owner)
    db.session.commit()
    count = len(events(req.id))

    response = put(client, body_for(req), token)

    assert_json_error(response, 409)
    req = fresh(req.id)
    assert req.status == decision
    assert req.targets == []
    assert len(events(req.id)) == count


def test_a_cluster_the_request_is_not_built_on_is_a_conflict(client, owner, admin, token):
    req = approve(owner, admin)  # silver

    response = put(client, body_for(req, "gold"), token)

    # Which request, and why; never what was sent.
    assert assert_json_error(response, 409) == (
        f"request {req.id} has no provisioning on the reported cluster (status approved)"
    )
    assert fresh(req.id).status == S.APPROVED
    assert [t.cluster for t in fresh(req.id).targets] == ["silver"]


# --- the service-accounts command ----------------------------------------------------------------


def test_a_service_account_token_is_printed_once_stored_hashed_and_works(
    runner, client, owner, admin
):
    result = runner.invoke(args=["service-accounts", "create", "pipeline"])

    assert result.exit_code == 0, result.output
    tokens = TOKEN_PATTERN.findall(result.output)
    assert len(tokens) == 1, result.output
    [token] = tokens
    assert result.output.count(token) == 1
    assert "shown only this once" in result.output

    db.session.expire_all()
    [account] = db.session.scalars(select(ServiceAccount)).all()
    assert account.name == "pipeline"
    assert account.active
    assert account.token_hash == hashlib.sha256(token.encode()).hexdigest()
    # The token itself is nowhere in the database: not in this row, not in any table.
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            for row in conn.execute(text(f'SELECT * FROM "{table.name}"')):
                for value in row:
                    assert token not in str(value), f"the token is stored in {table.name}"

    req = approve(owner, admin)
    assert put(client, body_for(req), token).status_code == 204
    assert fresh(req.id).status == S.PROVISIONED


def test_each_service_account_gets_its_own_token(runner):
    first = runner.invoke(args=["service-accounts", "create", "pipeline"])
    second = runner.invoke(args=["service-accounts", "create", "other-pipeline"])
    assert first.exit_code == second.exit_code == 0
    assert TOKEN_PATTERN.findall(first.output) != TOKEN_PATTERN.findall(second.output)
    db.session.expire_all()
    hashes = db.session.scalars(select(ServiceAccount.token_hash)).all()
    assert len(set(hashes)) == 2


def test_a_service_account_name_is_taken_once(runner):
    first = runner.invoke(args=["service-accounts", "create", "pipeline"])
    [token] = TOKEN_PATTERN.findall(first.output)

    again = runner.invoke(args=["service-accounts", "create", "pipeline"])

    assert again.exit_code == 1
    assert "exists already" in again.output
    assert TOKEN_PATTERN.findall(again.output) == []
    db.session.expire_all()
    [account] = db.session.scalars(select(ServiceAccount)).all()
    assert account.token_hash == machine_accounts.hash_token(token)  # the first token still works


# --- the provisioner-report command (the provisioner played by hand) -----------------------------


def status_messages(app, url) -> list[dict]:
    """The bodies of every message on the status subject, read back from the stream."""

    async def read(js):
        stream = app.config["NATS_STREAM"]
        info = await js.stream_info(stream)
        bodies = []
        if info.state.messages:
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                msg = await js.get_msg(stream, seq)
                if msg.subject == contract.STATUS_SUBJECT:
                    bodies.append(json.loads(msg.data))
        return bodies

    return run_async(read, url)


def play(runner, *args):
    # The command runs an event loop of its own: not on a thread where Playwright left one.
    return in_a_thread(runner.invoke, args=["provisioner-report", *args])


def test_provisioner_report_publishes_a_status_report_to_jetstream(
    nats_app, nats_server, runner, owner, admin
):
    req = approve(owner, admin)
    plate = req.product.licence_plate
    before = datetime.now(UTC)

    result = play(
        runner,
        plate,
        "silver",
        "namespaces_created",
        "--message",
        "Four namespaces created.",
        "--request-id",
        str(req.id),
    )

    assert result.exit_code == 0, result.output
    workflow = f"silver-{plate}-{req.id}"
    assert f"Published namespaces_created for {workflow}" in result.output
    assert re.search(r"stream sequence \d+", result.output)
    [body] = status_messages(nats_app, nats_server.url)
    assert {k: v for k, v in body.items() if k != "occurred_at"} == {
        "prefix": plate,
        "clusterName": "silver",
        "workflow": workflow,
        "status": "namespaces_created",
        "message": "Four namespaces created.",
    }
    assert body["occurred_at"].endswith("Z")
    occurred = datetime.fromisoformat(body["occurred_at"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= occurred <= datetime.now(UTC)
    # What it published is a report the bridge accepts.
    parsed = contract.parse_report(json.dumps(body))
    assert (parsed.request_id, parsed.status) == (req.id, "namespaces_created")
    # Publishing is all it does: the request moves only when the bridge applies the report.
    assert fresh(req.id).status == S.APPROVED


def _edit_request(product: Product, requester) -> Request:
    """A second request of a provisioned product: a quota increase, which waits for review."""
    data = ProductData.from_dict(live_data(product))
    data.quotas["prod"]["cpu"] = "cpu-request-2-limit-4"
    edit = services.submit_edit(
        product, data, requester, justification="Two more services go live in March."
    )
    db.session.commit()
    assert edit.status == S.PENDING
    return edit


def test_provisioner_report_defaults_to_the_products_latest_request(
    nats_app, nats_server, runner, owner, admin
):
    first = approve(owner, admin)
    report(first, "provisioned")
    latest = _edit_request(first.product, owner)
    # Another product's request is newer still: the plate decides, not the newest id.
    newer_elsewhere = builders.submit(owner)
    assert newer_elsewhere.id > latest.id > first.id
    plate = first.product.licence_plate

    result = play(runner, plate, "silver", "workflow_started")

    assert result.exit_code == 0, result.output
    [body] = status_messages(nats_app, nats_server.url)
    assert body["workflow"] == f"silver-{plate}-{latest.id}"
    assert (body["prefix"], body["status"], body["message"]) == (plate, "workflow_started", "")


def test_provisioner_report_can_report_a_failure(nats_app, nats_server, runner, owner, admin):
    req = approve(owner, admin, cluster_name="gold")
    plate = req.product.licence_plate

    result = play(runner, plate, "golddr", "failed", "--message", "Vault is down.")

    assert result.exit_code == 0, result.output
    [body] = status_messages(nats_app, nats_server.url)
    assert body["workflow"] == f"golddr-{plate}-{req.id}"
    assert (body["clusterName"], body["status"], body["message"]) == (
        "golddr",
        "failed",
        "Vault is down.",
    )


@pytest.mark.parametrize("step", ["bogus", "PROVISIONED", "namespaces-created", ""])
def test_provisioner_report_refuses_a_step_outside_the_contract(
    nats_app, nats_server, runner, owner, admin, step
):
    req = approve(owner, admin)

    result = play(runner, req.product.licence_plate, "silver", step, "--request-id", str(req.id))

    assert result.exit_code == 2, result.output
    assert "Invalid value" in result.output
    assert "workflow_started" in result.output  # click lists the steps it accepts
    assert status_messages(nats_app, nats_server.url) == []


def test_provisioner_report_needs_a_request_and_a_nats_url(app, nats_server, runner, owner, admin):
    req = approve(owner, admin)
    plate = req.product.licence_plate

    result = play(runner, plate, "silver", "workflow_started")
    assert result.exit_code == 1
    assert "REGISTRY_NATS_URL" in result.output

    app.config["NATS_URL"] = nats_server.url
    result = play(runner, "fedcba" if plate != "fedcba" else "abcdef", "silver", "provisioned")
    assert result.exit_code == 1
    assert "No request for" in result.output


# --- the product page's line about the active request --------------------------------------------

ACTIVE_LINE = re.compile(r'<p class="flash flash-info" role="status">(.*?)</p>', re.DOTALL)


def active_line(client, product) -> str | None:
    response = client.get(f"/products/{product.licence_plate}")
    assert response.status_code == 200
    lines = ACTIVE_LINE.findall(response.get_data(as_text=True))
    assert len(lines) <= 1
    if not lines:
        return None
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", lines[0])).split())


def test_the_product_page_says_which_request_is_active_and_who_it_waits_on(client, owner, admin):
    req = builders.submit(owner, cluster_name="gold")
    product = req.product
    builders.login(client, owner)
    says = f"request #{req.id} is waiting on"
    then = "Another request can be made once it is finished."

    assert active_line(client, product) == (
        f"New product pending approval: {says} a super admin's review. {then}"
    )

    services.decide(req.id, admin, approve=True)
    db.session.commit()
    assert active_line(client, product) == (
        f"New product approved: {says} the provisioner to start. {then}"
    )

    report(req, "workflow_started", cluster="gold")
    assert (
        active_line(client, product) == f"New product provisioning: {says} the provisioner. {then}"
    )

    report(req, "provisioned", cluster="gold")
    assert active_line(client, product) == (
        f"New product partially provisioned: {says} the provisioner on the second cluster. {then}"
    )

    report(req, "provisioned", cluster="golddr")
    assert active_line(client, product) is None
    page = client.get(f"/products/{product.licence_plate}").get_data(as_text=True)
    assert "is waiting on" not in page
    assert "Provisioned" in page
    assert "Request a change" in page


def test_the_product_page_says_a_failed_request_waits_on_a_super_admin(client, owner, admin):
    req = approve(owner, admin)
    report(req, "workflow_started")
    report(req, "failed", "ArgoCD could not sync.")
    builders.login(client, owner)

    assert active_line(client, req.product) == (
        f"New product failed: request #{req.id} is waiting on"
        " a super admin to fix the cause and re-send it."
        " Another request can be made once it is finished."
    )


def test_a_revoked_service_account_is_refused(app, client, runner):
    created = runner.invoke(args=["service-accounts", "create", "old-pipeline"])
    token = created.output.strip().splitlines()[-1]
    revoked = runner.invoke(args=["service-accounts", "revoke", "old-pipeline"])
    assert revoked.exit_code == 0, revoked.output
    response = client.put(
        "/api/v1/provision/namespace",
        json={"prefix": "abcdef", "clusterName": "silver"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 401
    assert runner.invoke(args=["service-accounts", "revoke", "nobody"]).exit_code == 1
