"""Bad input is a 4xx, never a 5xx: every route walked with NUL in its path, its query and its
form, bodies too large or nested too deeply, and JSON with characters no table can store.

Run on PostgreSQL (REGISTRY_TEST_DATABASE_URL) these are the inputs that used to give 500.
"""

import io
import json

import pytest
from sqlalchemy import func, select
from werkzeug.routing.converters import NumberConverter

from registry import contract
from registry.extensions import db
from registry.provisioning.models import DeadLetter
from registry.requests import services
from registry.requests.models import Request

from . import builders
from .support import eventually, run_async

NUL = "a\x00b"
FIELDS = [
    "q", "status", "type", "cluster", "ministry", "page", "field", "next", "comment",
    "decision", "confirmation", "confirmed", "submission_key", "name", "description",
    "email", "password", "product_owner-email", "prod-cpu", "quota-prod-cpu",
]  # fmt: skip


@pytest.fixture
def world(app, owner, admin):
    req = builders.submit(owner)
    return {"plate": req.product.licence_plate, "request_id": req.id, "admin": admin}


def urls(app, world, plate: str):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        values = {
            "plate": plate,
            "request_id": world["request_id"],
            "email_id": 1,
            "account_id": 1,
            "letter_id": 1,
        }
        url = app.url_map.bind("localhost").build(
            rule.endpoint, {name: values[name] for name in rule.arguments}
        )
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def send(client, method: str, url: str, query=None, form=None):
    if method == "GET":
        return client.get(url, query_string=query)
    if method == "PUT":
        return client.put(url, query_string=query, json={"prefix": "x", "clusterName": "y"})
    data = dict(form or {})
    data["csrf_token"] = builders.csrf_token(client)
    return client.post(url, query_string=query, data=data)


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "super-admin"])
def test_nul_anywhere_in_any_route_is_a_400(app, client, world, signed_in):
    if signed_in:
        builders.login(client, world["admin"])
    answers = {}
    for endpoint, method, url in urls(app, world, world["plate"]):
        nul_query = send(client, method, url, query=dict.fromkeys(FIELDS, NUL))
        answers[(endpoint, method, "query")] = nul_query.status_code
        if method == "POST":
            nul_form = send(client, method, url, form=dict.fromkeys(FIELDS, NUL))
            answers[(endpoint, method, "form")] = nul_form.status_code
    for endpoint, method, url in urls(app, world, "ab\x00cd"):
        if "<plate>" in str(next(app.url_map.iter_rules(endpoint))):
            answers[(endpoint, method, "path")] = send(client, method, url).status_code
    assert len(answers) > 40

    def expected(endpoint, where, status):
        # A form that checks its own fields answers 422 (or 409, or 200 for a preview) with its
        # message and the rest of what was typed; every other request gets 400.
        own = getattr(app.view_functions[endpoint], "validates_its_form", False)
        return (
            status in (200, 302, 400, 404, 409, 422) if own and where == "form" else status == 400
        )

    assert {k: v for k, v in answers.items() if not expected(k[0], k[2], v)} == {}


@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "super-admin"])
def test_odd_but_storable_input_never_gives_a_5xx(app, client, world, signed_in):
    if signed_in:
        builders.login(client, world["admin"])
    odd = ["\uffff", "%", "_", "\\", "'; DROP TABLE requests; --", "é" * 3000, "-1", "9" * 40]
    failures = {}
    for value in odd:
        for endpoint, method, url in urls(app, world, world["plate"]):
            response = send(
                client,
                method,
                url,
                query=dict.fromkeys(FIELDS, value),
                form=dict.fromkeys(FIELDS, value),
            )
            if response.status_code >= 500:
                failures[(endpoint, method, value[:10])] = response.status_code
    assert failures == {}


# --- the provisioner's HTTP callback ------------------------------------------------------------


@pytest.fixture
def token(runner):
    created = runner.invoke(args=["service-accounts", "create", "pipeline"])
    return created.output.strip().splitlines()[-1]


def put(client, token, data: bytes):
    return client.put(
        "/api/v1/provision/namespace",
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"prefix": ' + b"[" * 40 + b"1" + b"]" * 40 + b"}", "nested too deeply"),
        (b'{"prefix": "ab\\u0000cd", "clusterName": "silver"}', "NUL or a lone surrogate"),
        (b'{"prefix": "\\udc80", "clusterName": "silver"}', "NUL or a lone surrogate"),
        (b'{"prefix": "abc", "clusterName": "\\ud800"}', "NUL or a lone surrogate"),
        (b'{"prefix": "abc"', "malformed JSON"),
        (b"\xff\xfe", "malformed JSON"),
    ],
    ids=["100000-deep", "40-deep", "nul", "surrogate-prefix", "surrogate-cluster", "cut", "bytes"],
)
def test_the_callback_refuses_bad_json_with_a_400(client, world, token, body, reason):
    response = put(client, token, body)
    assert response.status_code == 400
    assert reason in response.get_json()["error"]


def test_a_body_over_the_limit_is_a_413_that_echoes_nothing(client, world, token):
    huge = json.dumps({"prefix": "a" * 10_000_000, "clusterName": "silver"}).encode()
    response = put(client, token, huge)
    assert response.status_code == 413
    assert response.is_json
    assert len(response.get_data()) < 1000


# --- the bridge: a report no table can store never holds up the good ones ---------------------


def test_a_surrogate_report_and_a_valid_one_in_one_burst(
    nats_app, nats_server, nats_worker, owner, admin
):
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    plate = req.product.licence_plate
    bad = (
        b'{"prefix": "\\udc80", "clusterName": "silver", "workflow": "silver-\\udc80-1",'
        b' "status": "provisioned"}'
    )
    good = json.dumps(contract.report_body(plate, "silver", req.id, "workflow_started")).encode()

    async def burst(js):
        for data in (bad, good):
            await js.publish(contract.STATUS_SUBJECT, data)

    run_async(burst, nats_server.url)
    nats_worker(relay=False, bridge=True)

    def status():
        db.session.rollback()
        return db.session.scalar(select(Request.status).where(Request.id == req.id))

    eventually(lambda: status() == "provisioning", timeout=5)

    def letters():
        db.session.rollback()
        return list(db.session.scalars(select(DeadLetter)))

    [letter] = eventually(letters, timeout=5)
    assert "lone surrogate" in letter.reason
    assert letter.delivered == 1  # set aside at once, not after retries


# --- integers: one bound for every id in a path and every number in a query or a form ---------


def test_every_integer_in_a_path_is_a_bounded_id(app):
    """Werkzeug's ``int`` takes any number of digits; an id past PostgreSQL's integer was a 500."""
    integers = {
        (rule.rule, name): type(converter).__name__
        for rule in app.url_map.iter_rules()
        for name, converter in rule._converters.items()
        if isinstance(converter, NumberConverter)
    }
    assert len(integers) >= 10
    assert set(integers.values()) == {"IdConverter"}


@pytest.mark.parametrize("text", ["0", "2147483648", "9223372036854775808", "9" * 5000])
def test_an_id_out_of_range_is_no_route(client, world, text):
    builders.login(client, world["admin"])
    for url in (f"/requests/{text}", f"/admin/requests/{text}/whole", f"/dev/mailbox/{text}"):
        assert client.get(url).status_code == 404, url
    for url in (f"/admin/requests/{text}/decision", f"/admin/service-accounts/{text}/revoke"):
        assert builders.post(client, url, {"decision": "approve"}).status_code == 404, url
    # The largest id there is is a route: one with nothing at it.
    assert client.get("/requests/2147483647").status_code == 404
    assert client.get(f"/requests/{world['request_id']}").status_code == 200


@pytest.mark.parametrize("text", ["0", "-1", "2147483648", "9223372036854775807", "x", "²"])
def test_a_page_out_of_range_is_a_400_that_says_the_range(client, world, text):
    builders.login(client, world["admin"])
    for path in ("/admin/queue", "/history", "/audit", "/admin/mail", "/admin/dead-letters",
                 "/products", f"/products/{world['plate']}", "/dev/mailbox"):  # fmt: skip
        response = client.get(path, query_string={"page": text})
        assert response.status_code == 400, path
        assert "page must be a whole number from 1 to 2,147,483,647" in response.get_data(
            as_text=True
        )
    assert client.get("/history?page=2147483647").status_code == 200  # past the last: empty
    assert client.get("/history?page=").status_code == 200  # not given: the first


def test_the_queues_poll_refuses_ids_out_of_range(client, world):
    builders.login(client, world["admin"])
    poll = "/admin/queue/updates"
    assert client.get(poll, query_string={"ids": "2147483648"}).status_code == 400
    assert client.get(poll, query_string={"ids": "1,²"}).status_code == 400
    assert client.get(poll, query_string={"count": "9" * 30}).status_code == 400
    answer = client.get(poll, query_string={"ids": f"{world['request_id']},7", "count": "1"})
    assert answer.status_code == 204  # nothing decided, the count as shown


def test_the_audit_log_filters_to_the_last_day_there_is(client, world):
    builders.login(client, world["admin"])
    assert client.get("/audit?from=0001-01-01&to=9999-12-31").status_code == 200
    assert client.get("/audit.csv?to=9999-12-31").status_code == 200


# --- files: no route takes one ------------------------------------------------------------------


def test_a_file_in_a_form_is_a_400_that_stores_nothing(client, world):
    builders.login(client, world["admin"])
    pending = builders.form_data()
    cases = [
        ("/products/new", {**pending, "name": (io.BytesIO(b"Fish"), "name.txt")}),
        ("/products/new/validate?field=name", {**pending, "name": (io.BytesIO(b"F"), "n.txt")}),
        (f"/requests/{world['request_id']}/comments", {"body": (io.BytesIO(b"Hi"), "b.txt")}),
        (f"/admin/requests/{world['request_id']}/decision", {
            "decision": "approve", "attachment": (io.BytesIO(b"%PDF-1.7"), "a.pdf"),
        }),
    ]  # fmt: skip
    for url, data in cases:
        response = builders.post(client, url, data)
        assert response.status_code == 400, url
        assert "This form takes no files" in response.get_data(as_text=True)
    db.session.rollback()
    assert db.session.get(Request, world["request_id"]).status == "pending"
    assert db.session.scalar(select(func.count()).select_from(Request)) == 1
