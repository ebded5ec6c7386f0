"""Bad input is a 4xx, never a 5xx: every route walked with NUL in its path, its query and its
form, bodies too large or nested too deeply, and JSON with characters no table can store; and
every route swept as anonymous, a product team member, support and a super admin with integers
out of range in each id of its path and in each number of its query, a file in its form, and a
NUL in each field of its form on each step.

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
from registry.requests.services import COMMENT_MAX
from tests import builders
from tests.app import test_access as access
from tests.conftest import FreshContextClient, built_once
from tests.support import eventually, run_async

NUL = "a\x00b"
FIELDS = [
    "q", "status", "type", "cluster", "ministry", "page", "field", "next", "comment",
    "decision", "confirmation", "confirmed", "submission_key", "name", "description",
    "email", "password", "product_owner-email", "prod-cpu", "quota-prod-cpu", "ends_on",
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
            "offer_id": 1,
            "token_id": 1,
            "delivery_id": 1,
            "cluster": "silver",
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


# Among them, a value one character longer than the longest field the registry keeps.
LONGEST = "é" * (COMMENT_MAX + 1)
ODD = ["\uffff", "%", "_", "\\", "'; DROP TABLE requests; --", LONGEST, "-1", "9" * 40]


@pytest.mark.parametrize("value", ODD, ids=[f"odd{n}" for n in range(len(ODD))])
@pytest.mark.parametrize("signed_in", [False, True], ids=["anonymous", "super-admin"])
def test_odd_but_storable_input_never_gives_a_5xx(app, client, world, signed_in, value):
    # One test per value, so the sweep spreads over the suite's workers.
    if signed_in:
        builders.login(client, world["admin"])
    failures = {}
    for endpoint, method, url in urls(app, world, world["plate"]):
        response = send(
            client,
            method,
            url,
            query=dict.fromkeys(FIELDS, value),
            form=dict.fromkeys(FIELDS, value),
        )
        if response.status_code >= 500:
            failures[(endpoint, method)] = response.status_code
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


@pytest.mark.parametrize(
    ("body", "status", "reason"),
    [
        ({"prefix": "a" * 900 * 1024, "clusterName": "silver"}, 400, "longer than 200"),
        ({"prefix": "zzzzzz", "clusterName": "c" * 900 * 1024}, 400, "longer than 200"),
        ({"prefix": "zqxjkv", "clusterName": "silver"}, 404, "unknown licence plate"),
        ({"prefix": "PLATE", "clusterName": "mars-cluster"}, 404, "unknown licence plate"),
        ({"prefix": ["zqxjkv"], "clusterName": "silver"}, 400, "must be a non-empty string"),
    ],
    ids=["900-KiB-prefix", "900-KiB-cluster", "unknown-plate", "unknown-both", "a-list"],
)
def test_the_callback_never_echoes_what_was_sent(client, world, token, body, status, reason):
    response = put(client, token, json.dumps(body).encode())
    assert response.status_code == status
    error = response.get_json()["error"]
    assert reason in error
    assert len(response.get_data()) < 300
    for value in body.values():
        assert str(value)[:6] not in error


def test_the_callback_names_the_request_it_refuses_not_the_cluster_sent(client, world, token):
    body = {"prefix": world["plate"], "clusterName": "mars-cluster"}
    response = put(client, token, json.dumps(body).encode())
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error == (
        f"request {world['request_id']} has no provisioning on the reported cluster"
        " (status pending)"
    )


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


# --- every route, as each kind of user: integers out of range, files, NUL in each field -------

# Integers no id column or page can hold: 0 (ids start at 1), past PostgreSQL's integer (ids),
# past its bigint (an offset), and more digits than Python turns into an int.
OUT_OF_RANGE = ("0", "2147483648", "9223372036854775808", "9" * 5000)
# The numbers a query carries: a list's page, the review queue poll's ids and count.
INTEGER_QUERY = ("page", "count", "ids")
# Beside a form's own fields, what the steps of a view that checks its own form add: a two-step
# form's "review" and "back to the form", a change's confirmation.
STEPS = ({}, {"step": "edit"}, {"step": "review", "confirmed": "yes"})
SWEPT = ("anonymous", "contact", "support", "super_admin")


def integer_parts(rule) -> list[str]:
    """The parts of a route's path that are integers (an id)."""
    return [
        name
        for name, converter in rule._converters.items()
        if isinstance(converter, NumberConverter)
    ]


def with_nul(value) -> str:
    """``value`` with a NUL after its first character: otherwise as valid as it was."""
    value = str(value)
    return value[:1] + "\x00" + value[1:]


class Sweep:
    """One persona's walk of every route; collects every answer that is a 5xx (an exception is
    an answer too: a 500 stops nothing) and every one that is not what the rule says."""

    def __init__(self, app, world, persona: str):
        app.config["PROPAGATE_EXCEPTIONS"] = False
        app.test_client_class = FreshContextClient
        self.app, self.world, self.persona = app, world, persona
        self.server_errors: dict = {}
        self.unexpected: dict = {}
        self.sent = 0
        self.rows = {(r.endpoint, r.method): r for r in access.ROUTES}
        self._sign_in()

    def _sign_in(self) -> None:
        self.client = self.app.test_client()
        access.sign_in(self.client, self.world, self.persona)
        self.token = builders.csrf_token(self.client)

    def routes(self):
        for rule in self.app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method, self.rows[(rule.endpoint, method)]

    def url(self, rule, **replace) -> str:
        """The route's URL for the world; an integer part named in ``replace`` holds that text."""
        sentinels = {name: 7_654_321 + n for n, name in enumerate(replace)}
        values = {name: self.world.url_values()[name] for name in rule.arguments}
        url = self.app.url_map.bind("localhost").build(rule.endpoint, {**values, **sentinels})
        for name, text in replace.items():
            url = url.replace(f"/{sentinels[name]}", f"/{text}")
        return url

    def send(self, where, method: str, url: str, query=None, form=None, expect=None):
        if method == "GET":
            response = self.client.get(url, query_string=query)
        elif method == "PUT" and form is not None:  # a form where JSON belongs
            response = self.client.put(url, query_string=query, data=form)
        elif method == "PUT":
            response = self.client.put(
                url, query_string=query, json={"prefix": self.world.plate, "clusterName": "x"}
            )
        else:
            data = {**(form or {}), "csrf_token": self.token}
            response = self.client.post(url, query_string=query, data=data)
        self.sent += 1
        key = (self.persona, *where)
        if response.status_code >= 500:
            self.server_errors[key] = response.status_code
        elif expect is not None and response.status_code != expect:
            self.unexpected[key] = response.status_code
        if where[0] in ("auth.login", "auth.logout") and method == "POST":
            self._sign_in()  # signed out, or in as someone else: back to this persona
        return response

    def form_of(self, row) -> dict:
        return row.form(self.world) if row.form else {}


@pytest.fixture(params=SWEPT)
def sweep(request, app):
    return Sweep(app, built_once("access.world", access.make_world), request.param)


def test_every_route_answers_numbers_and_dates_out_of_range_with_a_4xx(sweep):
    for rule, method, row in sweep.routes():
        form = sweep.form_of(row)
        for text in OUT_OF_RANGE:
            for part in integer_parts(rule):
                # Out of range, the route is not there: 404, before anything else is asked.
                where = (rule.endpoint, method, part, text[:20])
                sweep.send(where, method, sweep.url(rule, **{part: text}), form=form, expect=404)
            for name in INTEGER_QUERY:
                where = (rule.endpoint, method, name, text[:20])
                query = {**row.query, name: text}
                sweep.send(where, method, sweep.url(rule), query, form=form)
            for name in [k for k, v in form.items() if str(v).isdigit()]:  # a form's numbers
                where = (rule.endpoint, method, name, text[:20])
                sweep.send(where, method, sweep.url(rule), row.query, {**form, name: text})
        # And dates at the ends of the calendar (the audit log's filters).
        ends = {**row.query, "from": "0001-01-01", "to": "9999-12-31"}
        sweep.send((rule.endpoint, method, "dates"), method, sweep.url(rule), ends)
    assert sweep.sent > 500
    assert sweep.server_errors == {}
    assert sweep.unexpected == {}


def test_every_form_refuses_a_file_with_a_400(sweep):
    for rule, method, row in sweep.routes():
        if method == "GET":
            continue
        form = sweep.form_of(row) or {"name": "x"}
        as_files = {key: (io.BytesIO(str(value).encode()), "f.txt") for key, value in form.items()}
        beside = {**form, "attachment": (io.BytesIO(b"%PDF-1.7"), "a.pdf")}
        for shape, data in (("fields as files", as_files), ("a file beside", beside)):
            where = (rule.endpoint, method, shape)
            sweep.send(where, method, sweep.url(rule), form=data, expect=400)
    assert sweep.sent > 30
    assert sweep.server_errors == {}
    assert sweep.unexpected == {}


def test_a_nul_in_any_field_of_any_form_is_never_a_5xx(app, sweep):
    for rule, method, row in sweep.routes():
        if method != "POST":
            continue
        # A view that checks its own form answers with it (or whatever its rules say first);
        # every other one is refused at the door.
        own = getattr(app.view_functions[rule.endpoint], "validates_its_form", False)
        expect = None if own else 400
        form = sweep.form_of(row)
        for step in STEPS if own else STEPS[:1]:
            sent = {**form, **step}
            for field, value in sent.items():
                where = (rule.endpoint, method, field, tuple(step.items()))
                nul = {**sent, field: with_nul(value)}
                sweep.send(where, method, sweep.url(rule), row.query, nul, expect=expect)
        for field in set(FIELDS) - set(form):
            where = (rule.endpoint, method, field)
            nul = {**form, field: NUL}
            sweep.send(where, method, sweep.url(rule), row.query, nul, expect=expect)
    assert sweep.sent > 200
    assert sweep.server_errors == {}
    assert sweep.unexpected == {}
