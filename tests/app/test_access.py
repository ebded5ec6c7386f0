"""Who may reach what, CSRF on every state change, user input shown as text, and signing in.

The role matrix is checked against ``app.url_map``: a route added without a row in ``ROUTES``
fails ``test_the_matrix_covers_every_route``, and every POST row is also run without its CSRF token.

The matrix sends POSTs with a valid token, so an anonymous POST meets ``login_required`` and is
sent to the sign-in page (302); without a token the CSRF check runs first and answers 400.
"""

import json
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from registry import contract
from registry.api import tokens as api_tokens
from registry.api.models import Access, Scope
from registry.api.spec import ENDPOINTS as API_ENDPOINTS
from registry.auth import service_accounts as machine_accounts
from registry.auth.models import Role, ServiceAccount, User
from registry.capacity.models import SavingOffer
from registry.extensions import db
from registry.outbox.models import EmailStatus, OutboxEmail
from registry.products.models import Product
from registry.products.services import ContactData
from registry.provisioning import dead_letters as dead_letter_rules
from registry.provisioning.models import DeadLetter
from registry.requests import services as request_services
from registry.requests.models import Request, RequestStatus
from registry.webhooks.models import Webhook, WebhookDelivery
from tests import builders
from tests.conftest import built_once

PERSONAS = ("anonymous", "unrelated", "contact", "requester", "support", "super_admin")
SIGNED_IN = PERSONAS[1:]


@dataclass
class World:
    """One product, created by the requester, with the contact as its product owner."""

    emails: dict[str, str]
    plate: str
    request_id: int
    failed_email_id: int  # an outbox row of that request, marked failed so it can be retried
    service_account_id: int  # an active service account, to be revoked
    # An open dead letter naming the request (pending: a replay fails); 0 where none is made.
    dead_letter_id: int = 0
    # A saving offered on the product (it is not active: applying it is refused with a reason).
    offer_id: int = 0
    # An API token of the product's team, and one of a super admin over every product.
    product_token_id: int = 0
    staff_token_id: int = 0
    # A webhook of the product, with one event waiting to be sent.
    delivery_id: int = 0

    def url_values(self) -> dict:
        """What each part of a route's path is in this world."""
        return {
            "plate": self.plate,
            "request_id": self.request_id,
            "email_id": self.failed_email_id,
            "account_id": self.service_account_id,
            "letter_id": self.dead_letter_id,
            "offer_id": self.offer_id,
            "token_id": self.product_token_id,
            "cluster": "silver",
            "delivery_id": self.delivery_id,
        }

    def url(self, app, endpoint: str, **query) -> str:
        [rule] = app.url_map.iter_rules(endpoint)
        known = self.url_values()
        if endpoint == "api_tokens.revoke_staff_token":
            known["token_id"] = self.staff_token_id
        values = {name: known[name] for name in rule.arguments}
        return app.url_map.bind("localhost").build(endpoint, {**values, **query})


@pytest.fixture
def world(app) -> World:
    return built_once("access.world", make_world)


def make_world() -> World:
    """The world of the role matrix (in an app context): also swept with bad input by
    tests/app/test_bad_input.py."""
    # Hundreds of sign-ins: the test app's PASSWORD_HASH_METHOD keeps them fast.
    people = {
        "unrelated": builders.make_user(email="unrelated@example.com", name="Una Related"),
        "contact": builders.make_user(email="contact@example.com", name="Cora Contact"),
        "requester": builders.make_user(email="requester@example.com", name="Rita Requester"),
        "support": builders.make_user(Role.SUPPORT, email="support@example.com", name="Sue"),
        "super_admin": builders.make_user(Role.SUPER_ADMIN, email="admin@example.com", name="Ada"),
    }
    req = builders.submit(
        people["requester"], owner=ContactData("Cora", "Contact", "contact@example.com")
    )
    failed = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.request_id == req.id).order_by(OutboxEmail.id)
    ).first()
    failed.status = EmailStatus.FAILED.value
    failed.attempts = 8
    failed.last_error = "550 mailbox unavailable"
    account, _ = machine_accounts.create_service_account("pipeline")
    report = contract.report_body(req.product.licence_plate, "silver", req.id, "workflow_started")
    letter = dead_letter_rules.dead_letter("nats", json.dumps(report), "request is pending")
    offer = SavingOffer(
        product=req.product,
        proposal={"namespaces.dev.cpu": {"from": "cpu-request-0.5-limit-1.5",
                  "to": "cpu-request-0.5-limit-1.5", "peak": 0.01, "quota": 0.5}},
        monthly_saving=0.0,
        window_days=30,
    )  # fmt: skip
    db.session.add(offer)
    product_token, _ = api_tokens.create(
        "pipeline", Scope.PRODUCT, Access.READ, people["requester"], product=req.product
    )
    staff_token, _ = api_tokens.create("reports", Scope.ALL, Access.READ, people["super_admin"])
    hook = Webhook(product=req.product, url="https://hooks.example.com/in", secret="whsec_AAAA",
                   created_by_id=people["requester"].id)  # fmt: skip
    event = {"type": "request.submitted", "data": {"request_id": req.id}}
    delivery = WebhookDelivery(
        webhook=hook, message_id="msg_world", event_type="request.submitted", payload=event
    )
    db.session.add_all([hook, delivery])
    db.session.commit()
    return World(
        emails={persona: user.email for persona, user in people.items()},
        plate=req.product.licence_plate,
        request_id=req.id,
        failed_email_id=failed.id,
        service_account_id=account.id,
        dead_letter_id=letter.id,
        offer_id=offer.id,
        product_token_id=product_token.id,
        staff_token_id=staff_token.id,
        delivery_id=delivery.id,
    )


def sign_in(client, world: World, persona: str) -> None:
    if persona != "anonymous":
        builders.login(client, SimpleNamespace(email=world.emails[persona]))


def signed_in(client) -> bool:
    return client.get("/products").status_code == 200


MORE = object()  # in an expected change: "this count went up"


def snapshot(client, world: World) -> dict:
    """What a state-changing route could have changed, read fresh from the database."""
    state = {
        "request": db.session.scalar(select(Request.status).where(Request.id == world.request_id)),
        "products": db.session.scalar(select(func.count()).select_from(Product)),
        "outbox": db.session.scalar(select(func.count()).select_from(OutboxEmail)),
        "email": db.session.scalar(
            select(OutboxEmail.status).where(OutboxEmail.id == world.failed_email_id)
        ),
        "accounts": db.session.scalar(
            select(func.count()).select_from(ServiceAccount).where(ServiceAccount.active.is_(True))
        ),
        "open_letters": db.session.scalar(
            select(func.count()).select_from(DeadLetter).where(DeadLetter.resolution.is_(None))
        ),
    }
    db.session.rollback()
    state["signed_in"] = signed_in(client)
    return state


def assert_changes(before: dict, after: dict, changes: dict) -> None:
    """Exactly ``changes`` happened: every other part of the state is as it was."""
    for key, old in before.items():
        if key not in changes:
            assert after[key] == old, f"{key} changed from {old!r} to {after[key]!r}"
        elif changes[key] is MORE:
            assert after[key] > old, f"{key} did not grow from {old!r}"
        else:
            assert after[key] == changes[key], f"{key} is {after[key]!r}, not {changes[key]!r}"


# The role matrix. An expectation is a status, or (status, path the Location header points to).
LOGIN = (302, "/login")  # login_required sends the anonymous to the sign-in page
HOME = "/"  # where signing in lands without a (safe) next: it sends each role to its own page


def matrix(signed_in, anonymous=LOGIN, **exceptions) -> dict:
    row = dict.fromkeys(SIGNED_IN, signed_in)
    row["anonymous"] = anonymous
    row.update(exceptions)
    return row


PRODUCT_PAGE = matrix(200, unrelated=404)  # a product's own pages: its people, and the staff
STAFF_PAGE = matrix(403, support=200, super_admin=200)
DAY_TWO = matrix(409, support=403, unrelated=404)
SUPER_ADMIN_ACTION = {"unrelated", "contact", "requester", "support"}


@dataclass(frozen=True)
class Route:
    endpoint: str
    method: str
    expected: dict
    form: object = None  # World -> the POST body a browser would send, without the CSRF token
    query: dict = field(default_factory=dict)
    changes: dict = field(default_factory=dict)  # persona -> what a successful call changes
    # False for the one POST a browser never sends: the provider's back-channel call.
    csrf: bool = True

    @property
    def actor(self) -> str:
        """The persona this action is for: the one a missing CSRF token must stop."""
        if "requester" in self.changes or not self.changes:
            return "requester"
        return next(iter(self.changes))


API_ROUTES = [SimpleNamespace(endpoint=f"api.{e.name}", method=e.method) for e in API_ENDPOINTS]

ROUTES = [
    Route(
        "index",
        "GET",
        matrix((302, "/products"), support=(302, "/history"), super_admin=(302, "/admin/queue")),
    ),
    Route("health.healthz", "GET", matrix(200, anonymous=200)),
    # The favicon: anyone, a permanent redirect to the SVG in static.
    Route(
        "favicon",
        "GET",
        matrix((301, "/static/favicon.svg"), anonymous=(301, "/static/favicon.svg")),
    ),
    Route("health.readyz", "GET", matrix(200, anonymous=200)),
    # Prometheus' scrape: open to loopback by default in development (METRICS_ALLOWED_NETWORKS),
    # and the test client is 127.0.0.1, so everyone here reads it, signed in or not; from any
    # other address it needs METRICS_TOKEN (tests/metrics/test_metrics.py). So does /readyz's why.
    Route("metrics.metrics", "GET", matrix(200, anonymous=200)),
    Route("auth.login", "GET", matrix((302, HOME), anonymous=200)),
    Route(
        "auth.login",
        "POST",
        matrix((302, HOME), anonymous=(303, HOME)),
        form=lambda w: {"email": w.emails["requester"], "password": "password"},
        changes={"anonymous": {"signed_in": True}},
    ),
    # Single sign-on is off in the test app: its routes do not exist for anyone
    # (tests/auth/test_oidc.py runs them against a real provider).
    Route("auth.oidc_start", "GET", matrix(404, anonymous=404)),
    Route("auth.oidc_callback", "GET", matrix(404, anonymous=404)),
    # The provider's server-to-server call, with a signed logout token instead of a session
    # and a CSRF token (tests/auth/test_oidc_hardening.py runs it against a provider).
    Route("auth.oidc_backchannel_logout", "POST", matrix(404, anonymous=404), csrf=False),
    Route(
        "auth.logout",
        "POST",
        matrix((303, "/login")),
        changes={persona: {"signed_in": False} for persona in SIGNED_IN},
    ),
    Route("products.mine", "GET", matrix(200)),
    Route("asking.new", "GET", matrix(200, support=403)),
    Route(
        "asking.new",
        "POST",
        matrix(303, support=403),
        form=lambda w: builders.form_data(),
        changes={
            persona: {"products": MORE, "outbox": MORE}
            for persona in SIGNED_IN
            if persona != "support"
        },
    ),
    Route(
        "asking.validate_field",
        "POST",
        matrix(200, support=403),
        form=lambda w: builders.form_data(),
        query={"field": "name"},
    ),
    # "Pick a contact": names and emails of the people the registry knows, only to those who
    # may ask for products (a fragment for HTMX).
    Route("asking.people", "GET", matrix(200, support=403), query={"q": "co"}),
    # A saving on offer: its team and super admins answer it (this product is not active, so
    # applying is refused with the reason on the product page); support only reads.
    *(
        Route(endpoint, "POST", matrix((303, "/products/{plate}"), unrelated=404, support=403))
        for endpoint in ("capacity.apply_saving", "capacity.dismiss_saving")
    ),
    # The cost report, as a page and a CSV: the staff.
    Route("capacity.cost_report", "GET", STAFF_PAGE),
    Route("capacity.cost_report_csv", "GET", STAFF_PAGE),
    Route("products.detail", "GET", PRODUCT_PAGE),
    # The world's product is still requested: no change, deletion or new request can be made
    # while its first request is open, and the answer says so (409) to those who may ask.
    *(
        Route(
            endpoint,
            method,
            DAY_TWO,
            form=lambda w: builders.form_data(confirmation=w.plate, reason="Moved on."),
        )
        for endpoint in ("asking.change", "asking.delete", "asking.request_again")
        for method in ("GET", "POST")
    ),
    Route(
        "asking.change_preview",
        "POST",
        matrix(200, support=403, unrelated=404),
        form=lambda w: builders.form_data(),
    ),
    Route("requests.detail", "GET", PRODUCT_PAGE),
    # Comments on the (pending) request: its team and the super admins, emailed to the other
    # side; support reads only; someone outside learns nothing.
    Route(
        "requests.comment",
        "POST",
        matrix((303, "/requests/{request_id}"), unrelated=404, support=403),
        form=lambda w: {"body": "A question before the decision."},
        changes={p: {"outbox": MORE} for p in ("contact", "requester", "super_admin")},
    ),
    Route(
        "requests.cancel",
        "POST",
        # Only the requester cancels; someone who may not even see the request learns nothing.
        matrix(403, unrelated=404, requester=(303, "/requests/{request_id}")),
        changes={"requester": {"request": RequestStatus.CANCELLED.value, "outbox": MORE}},
    ),
    Route("review.queue", "GET", STAFF_PAGE),
    Route("review.queue_updates", "GET", STAFF_PAGE),
    # The world's request is a create: there are no other quotas to grant, for anyone.
    Route("review.grant", "GET", matrix(403, super_admin=404)),
    Route("review.whole_request", "GET", STAFF_PAGE),
    Route(
        "review.decide",
        "POST",
        matrix(403, super_admin=(303, "/admin/queue")),
        form=lambda w: {"decision": "approve"},
        changes={"super_admin": {"request": RequestStatus.APPROVED.value, "outbox": MORE}},
    ),
    Route("finding.all_requests", "GET", STAFF_PAGE),
    Route("finding.export", "GET", STAFF_PAGE),
    Route("notifications.outgoing", "GET", STAFF_PAGE),
    Route(
        "notifications.retry",
        "POST",
        matrix(403, super_admin=(303, "/admin/mail")),
        changes={"super_admin": {"email": EmailStatus.PENDING.value}},
    ),
    Route("provisioning.dead_letters", "GET", STAFF_PAGE),
    # The world's dead letter names its pending request: a replay fails again and keeps it.
    Route(
        "provisioning.replay_dead_letter",
        "POST",
        matrix(403, super_admin=(303, "/admin/dead-letters")),
    ),
    Route(
        "provisioning.discard_dead_letter",
        "POST",
        matrix(403, super_admin=(303, "/admin/dead-letters")),
        form=lambda w: {"note": "A test run; nothing to apply."},
        changes={"super_admin": {"open_letters": 0}},
    ),
    Route(
        "provisioning.resend",
        "POST",
        # The world's request is pending, so even a super admin's re-send changes nothing.
        matrix(403, super_admin=(303, "/requests/{request_id}")),
    ),
    # The provisioner's API takes a bearer token, never a browser session.
    Route("provisioning.provisioned_callback", "PUT", matrix(401, anonymous=401)),
    # The development mailbox (on in the test app): super admins read all mail, everyone else
    # the mail addressed to them. The world's failed email is the team's "request received".
    Route("notifications.mailbox", "GET", matrix(200)),
    Route("notifications.mailbox_message", "GET", matrix(200, unrelated=404, support=404)),
    Route("notifications.mailbox_html", "GET", matrix(200, unrelated=404, support=404)),
    # The audit log and its export: the staff read it.
    Route("audit.events", "GET", STAFF_PAGE),
    Route("audit.export", "GET", STAFF_PAGE),
    # The operations page and its runbook: the staff read them.
    Route("operations.page", "GET", STAFF_PAGE),
    Route("operations.runbook", "GET", STAFF_PAGE),
    # Service accounts: super admins only; the new token is shown on the page the POST answers.
    Route("auth.service_accounts", "GET", matrix(403, super_admin=200)),
    Route(
        "auth.create_service_account",
        "POST",
        matrix(403, super_admin=200),
        form=lambda w: {"name": "new-pipeline", "expires_in_days": "30"},
        changes={"super_admin": {"accounts": MORE}},
    ),
    Route(
        "auth.revoke_service_account",
        "POST",
        matrix(403, super_admin=(303, "/admin/service-accounts")),
        changes={"super_admin": {"accounts": 0}},
    ),
    # /api/v1 takes a bearer token, never the session cookie: 401 for everyone here (its own
    # tests: tests/api/). Its document and reference are public.
    *(
        Route(r.endpoint, r.method, matrix(401, anonymous=401), csrf=False)
        for r in API_ROUTES
        if r.endpoint not in ("api.openapi_document", "api.reference_page", "api.try_page")
    ),
    Route("api.openapi_document", "GET", matrix(200, anonymous=200)),
    Route("api.reference_page", "GET", matrix(200, anonymous=200)),
    Route("api.try_page", "GET", matrix(200, anonymous=200)),
    # API tokens: a product's team makes (the secret on the page the POST answers) and revokes
    # its own; super admins make and revoke those over ministries.
    Route(
        "api_tokens.make_product_token",
        "POST",
        matrix(200, unrelated=404, support=403),
        form=lambda w: {"name": "nightly", "access": "read", "days": "30"},
    ),
    Route(
        "api_tokens.revoke_product_token",
        "POST",
        matrix((303, "/products/{plate}"), unrelated=404, support=403),
    ),
    Route("api_tokens.staff_tokens", "GET", matrix(403, super_admin=200)),
    # A product's webhook: its team and super admins set it, remove it, send an event again
    # (here each is refused with the reason on the product page: a private address, ...).
    *(
        Route(
            endpoint,
            "POST",
            matrix((303, "/products/{plate}"), unrelated=404, support=403),
            form=lambda w: {"url": "https://10.1.2.3/hooks"},
        )
        for endpoint in ("webhooks.save", "webhooks.remove", "webhooks.send_again")
    ),
    Route(
        "api_tokens.staff_tokens",
        "POST",
        matrix(403, super_admin=200),
        form=lambda w: {"name": "reports 2", "scope": "all", "access": "read", "days": "30"},
    ),
    Route(
        "api_tokens.revoke_staff_token",
        "POST",
        matrix(403, super_admin=(303, "/admin/api-tokens")),
    ),
]
MAILBOX_ENDPOINTS = [r.endpoint for r in ROUTES if r.endpoint.startswith("notifications.mailbox")]


def send(client, app, world: World, route: Route, token: bool = True, headers=None):
    url = world.url(app, route.endpoint, **route.query)
    if route.method == "GET":
        return client.get(url, headers=headers)
    if route.method == "PUT":
        return client.put(url, json={"prefix": world.plate, "clusterName": "silver"})
    data = route.form(world) if route.form else {}
    if token:
        data["csrf_token"] = builders.csrf_token(client)
    return client.post(url, data=data, headers=headers)


def assert_status(response, expected, world: World) -> None:
    status, path = expected if isinstance(expected, tuple) else (expected, None)
    assert response.status_code == status, response.get_data(as_text=True)[:2000]
    if path is not None:
        location = urlsplit(response.headers["Location"])
        assert location.path == path.format(request_id=world.request_id, plate=world.plate)


def test_the_matrix_covers_every_route(app):
    routed = {
        (rule.endpoint, method)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    covered = [(r.endpoint, r.method) for r in ROUTES]
    assert len(covered) == len(set(covered)), "a route has two rows"
    assert set(covered) == routed, "add a row to ROUTES for every new route"


@pytest.mark.parametrize(
    ("route", "persona"),
    [
        pytest.param(route, persona, id=f"{route.method}-{route.endpoint}-{persona}")
        for route in ROUTES
        for persona in PERSONAS
    ],
)
def test_role_matrix(app, client, world, route, persona):
    sign_in(client, world, persona)
    before = snapshot(client, world)

    response = send(client, app, world, route)

    assert_status(response, route.expected[persona], world)
    assert_changes(before, snapshot(client, world), route.changes.get(persona, {}))


def _without_tokens(body: str) -> str:
    # Tokens are signed with a timestamp: two pages a second apart differ only there.
    return re.sub(
        r'(csrf-token" content="|X-CSRFToken": "|name="csrf_token" value=")[^"]+', r"\1", body
    )


def test_an_unrelated_user_cannot_tell_a_product_or_request_exists(app, client, world):
    sign_in(client, world, "unrelated")
    missing_plate = "abcdef" if world.plate != "abcdef" else "abcdee"
    missing_request = world.request_id + 1000
    pairs = [
        ("GET", f"/products/{world.plate}", f"/products/{missing_plate}"),
        ("GET", f"/requests/{world.request_id}", f"/requests/{missing_request}"),
        ("POST", f"/requests/{world.request_id}/cancel", f"/requests/{missing_request}/cancel"),
    ]
    for method, real, missing in pairs:
        if method == "GET":
            answers = [client.get(real), client.get(missing)]
        else:
            answers = [builders.post(client, real), builders.post(client, missing)]
        assert [a.status_code for a in answers] == [404, 404]
        bodies = [_without_tokens(a.get_data(as_text=True)) for a in answers]
        assert bodies[0] == bodies[1]


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_dev_mailbox_does_not_exist_when_it_is_off(app, client, world, persona):
    app.config["DEV_MAILBOX"] = False
    sign_in(client, world, persona)
    for endpoint in MAILBOX_ENDPOINTS:
        assert client.get(world.url(app, endpoint)).status_code == 404, endpoint


@pytest.mark.parametrize(
    ("persona", "listed"),
    [("unrelated", False), ("support", False), ("contact", True), ("requester", True)],
)
def test_my_products_lists_only_products_one_created_or_is_a_contact_of(
    client, world, persona, listed
):
    sign_in(client, world, persona)
    page = client.get("/products").get_data(as_text=True)
    assert (world.plate in page) is listed


# CSRF: every POST in the url_map (the matrix test above proves ROUTES is that list).
@pytest.mark.parametrize(
    ("route", "persona"),
    [
        pytest.param(route, persona, id=f"{route.endpoint}-{persona}")
        for route in ROUTES
        if route.method == "POST" and route.csrf
        for persona in dict.fromkeys(("anonymous", route.actor))
    ],
)
def test_a_post_without_csrf_token_is_refused_and_changes_nothing(
    app, client, world, route, persona
):
    sign_in(client, world, persona)
    before = snapshot(client, world)

    response = send(client, app, world, route, token=False)

    assert response.status_code == 400
    # The CSRF refusal, in the words of errors.stale_form_words.
    assert "Nothing was sent: you signed" in response.get_data(as_text=True)
    assert snapshot(client, world) == before
    # The same request with its token goes through: the token was all it lacked.
    assert_status(send(client, app, world, route), route.expected[persona], world)


def test_a_token_from_another_session_is_refused(app, client, world):
    others_token = builders.csrf_token(app.test_client())
    sign_in(client, world, "requester")
    response = client.post(
        f"/requests/{world.request_id}/cancel", data={"csrf_token": others_token}
    )
    assert response.status_code == 400
    assert snapshot(client, world)["request"] == RequestStatus.PENDING.value


def _header_only(client):
    return {"HX-Request": "true", "X-CSRFToken": builders.csrf_token(client)}


def test_htmx_decision_with_the_token_only_in_the_header(client, world):
    sign_in(client, world, "super_admin")
    response = client.post(
        f"/admin/requests/{world.request_id}/decision",
        data={"decision": "approve"},
        headers=_header_only(client),
    )
    assert response.status_code == 200
    assert "Approved" in response.get_data(as_text=True)
    assert snapshot(client, world)["request"] == RequestStatus.APPROVED.value


def test_htmx_cancel_with_the_token_only_in_the_header(client, world):
    sign_in(client, world, "requester")
    response = client.post(f"/requests/{world.request_id}/cancel", headers=_header_only(client))
    assert response.status_code == 204
    assert response.headers["HX-Redirect"] == f"/requests/{world.request_id}"
    assert snapshot(client, world)["request"] == RequestStatus.CANCELLED.value


# User input is text, on every page and in HTML mail; plain text mail keeps it as typed.
SCRIPT = "<script>alert(1)</script>"
ATTRIBUTE = '"><img src=x onerror=alert(1)>'
NAME = "A" + SCRIPT  # a product name starts with a letter and has at most 40 characters
DESCRIPTION = f"{ATTRIBUTE} {SCRIPT}"
COMMENT = f"No. {SCRIPT}{ATTRIBUTE}"
RAW_TAGS = ("<script>alert", "<img src=x")


def assert_shown_as_text(body: str, *values: str) -> None:
    for raw in RAW_TAGS:
        assert raw not in body
    for value in values:
        assert str(escape(value)) in body


def test_html_in_user_input_is_shown_as_text_everywhere(app, client, world):
    # The sign-in page re-renders what was typed.
    response = client.post(
        "/login",
        data={
            "email": f"x{ATTRIBUTE}{SCRIPT}",
            "password": "wrong",
            "csrf_token": builders.csrf_token(client),
        },
    )
    assert response.status_code == 422
    assert_shown_as_text(response.get_data(as_text=True), f"x{ATTRIBUTE}{SCRIPT}")

    contacts = (SCRIPT, ATTRIBUTE, ATTRIBUTE, SCRIPT)
    sign_in(client, world, "requester")
    response = builders.post(
        client,
        "/products/new",
        builders.form_data(
            name=NAME,
            description=DESCRIPTION,
            **{
                "product_owner-first_name": contacts[0],
                "product_owner-last_name": contacts[1],
                "primary_lead-first_name": contacts[2],
                "primary_lead-last_name": contacts[3],
            },
        ),
    )
    assert response.status_code == 303, response.get_data(as_text=True)
    request_url = response.headers["Location"]
    request_id = int(request_url.rsplit("/", 1)[1])
    plate = db.session.scalar(
        select(Product.licence_plate).where(Product.name == NAME)
    )  # stored exactly as typed
    db.session.rollback()

    everything = (NAME, DESCRIPTION, *contacts)
    requester_pages = {
        request_url: everything,  # with the flash message naming the product
        "/products": (NAME,),
        f"/products/{plate}": everything,
    }
    for url, shown in requester_pages.items():
        assert_shown_as_text(client.get(url).get_data(as_text=True), *shown)

    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})
    sign_in(client, world, "super_admin")
    queue = client.get("/admin/queue").get_data(as_text=True)
    assert_shown_as_text(queue, *everything)
    response = builders.post(
        client,
        f"/admin/requests/{request_id}/decision",
        {"decision": "reject", "comment": COMMENT},
    )
    assert response.status_code == 303

    emails = list(
        db.session.scalars(
            select(OutboxEmail).where(OutboxEmail.request_id == request_id).order_by(OutboxEmail.id)
        )
    )
    db.session.rollback()
    assert {e.kind for e in emails} == {"received", "awaiting_review", "rejected"}

    admin_pages = {
        f"/requests/{request_id}": (*everything, COMMENT),
        "/history": (NAME,),
        "/history?q=" + SCRIPT: (NAME, SCRIPT),  # the search box shows the search as typed
        "/admin/mail": (NAME,),
        "/dev/mailbox": (NAME,),
    }
    for email in emails:
        admin_pages[f"/dev/mailbox/{email.id}"] = (NAME,)
        admin_pages[f"/dev/mailbox/{email.id}/html"] = (NAME, SCRIPT)
    for url, shown in admin_pages.items():
        assert_shown_as_text(client.get(url).get_data(as_text=True), *shown)
    fragment = client.get("/history", headers={"HX-Request": "true"})
    assert "<html" not in fragment.get_data(as_text=True)
    assert_shown_as_text(fragment.get_data(as_text=True), NAME)

    for email in emails:
        assert_shown_as_text(email.body_html, NAME, SCRIPT)
        assert NAME in email.body_text
        assert SCRIPT in email.body_text
        assert NAME in email.subject  # a header, not HTML: escaping it would garble it
        assert not re.search(r"[\r\n]", email.subject)
    [rejected] = [e for e in emails if e.kind == "rejected"]
    assert_shown_as_text(rejected.body_html, COMMENT)
    assert COMMENT in rejected.body_text


def test_the_mailbox_html_body_may_not_run_scripts(client, world):
    sign_in(client, world, "requester")
    response = client.get(f"/dev/mailbox/{world.failed_email_id}/html")
    assert response.status_code == 200
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_an_email_subject_never_has_line_breaks(client, world):
    # The form refuses them ...
    sign_in(client, world, "requester")
    before = snapshot(client, world)
    response = builders.post(
        client, "/products/new", builders.form_data(name="Evil\r\nBcc: victim@example.com")
    )
    assert response.status_code == 422
    assert snapshot(client, world)["products"] == before["products"]
    # ... and a name that came another way is folded onto one line (header injection).
    requester = db.session.scalar(select(User).where(User.email == world.emails["requester"]))
    req = builders.submit(requester, name="Evil\r\nBcc: victim@example.com\nX")
    subjects = list(
        db.session.scalars(select(OutboxEmail.subject).where(OutboxEmail.request_id == req.id))
    )
    assert subjects
    for subject in subjects:
        assert not re.search(r"[\r\n]", subject)
        assert "Evil Bcc: victim@example.com X" in subject


# Signing in and out.
@pytest.mark.parametrize("email", ["requester@example.com", "nobody@example.com"])
def test_a_wrong_password_rerenders_the_form_with_a_message_and_no_session(client, world, email):
    response = client.post(
        "/login",
        data={"email": email, "password": "not-it", "csrf_token": builders.csrf_token(client)},
    )
    assert response.status_code == 422
    # The same words whether or not the account exists: no list of accounts by guessing.
    assert "Email or password is not right." in response.get_data(as_text=True)
    with client.session_transaction() as session:
        assert "_user_id" not in session
    assert not signed_in(client)


def test_signing_in_starts_a_new_session(client, world):
    old_token = builders.csrf_token(client)
    with client.session_transaction() as session:
        session["planted"] = "before sign-in"

    sign_in(client, world, "requester")

    with client.session_transaction() as session:
        assert "planted" not in session
        assert "_user_id" in session
    # A token handed out before the sign-in is worthless after it.
    response = client.post(f"/requests/{world.request_id}/cancel", data={"csrf_token": old_token})
    assert response.status_code == 400
    assert snapshot(client, world)["request"] == RequestStatus.PENDING.value


SITE = "https://registry.example.test"


def as_a_browser_reads(location: str) -> str:
    """Where a browser goes: it drops tabs and newlines and reads a backslash as a slash."""
    cleaned = re.sub(r"[\t\n\r]", "", location).replace("\\", "/")
    return urljoin(f"{SITE}/login", cleaned)


@pytest.mark.parametrize(
    ("next_url", "lands_on"),
    [
        ("/products/new", "/products/new"),
        ("/products", "/products"),
        ("/history?status=pending", "/history?status=pending"),
        ("//evil.example", HOME),
        ("https://evil.example", HOME),
        ("https://evil.example/products", HOME),
        ("javascript:alert(1)", HOME),
        # Werkzeug percent-encodes these in the Location header; any same-site page will do.
        ("/\\evil.example", None),
        ("/\t/evil.example", None),
        ("/\n/evil.example", None),
    ],
)
def test_next_redirects_only_to_same_site_paths(client, world, next_url, lands_on):
    response = client.post(
        "/login",
        query_string={"next": next_url},
        data={
            "email": world.emails["requester"],
            "password": "password",
            "csrf_token": builders.csrf_token(client),
        },
    )
    assert response.status_code == 303
    location = response.headers["Location"]
    assert as_a_browser_reads(location).startswith(f"{SITE}/")
    if lands_on is not None:
        assert location == lands_on


def test_signing_in_returns_to_the_page_asked_for(client, world):
    response = client.get(f"/products/{world.plate}")
    assert response.status_code == 302
    login_url = response.headers["Location"]
    assert parse_qs(urlsplit(login_url).query)["next"] == [f"/products/{world.plate}"]
    response = client.post(
        login_url,
        data={
            "email": world.emails["contact"],
            "password": "password",
            "csrf_token": builders.csrf_token(client),
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == f"/products/{world.plate}"


def test_sign_out_is_post_only(client, world):
    sign_in(client, world, "requester")
    assert client.get("/logout").status_code == 405
    assert signed_in(client)

    response = builders.post(client, "/logout")

    assert response.status_code == 303
    with client.session_transaction() as session:
        assert "_user_id" not in session
    assert not signed_in(client)


# --- separation of duties: which super admins may decide a product's request -----------------

# Each super admin with a hand in the product, and an uninvolved one, deciding the same pending
# quota increase: only the uninvolved one may, and a refusal changes nothing.
DECIDERS = {
    "submitted_it": 403,  # asked for this very request
    "is_a_contact": 403,  # the product's primary technical lead today
    "created_it": 403,  # asked for the product for its team
    "asked_before": 403,  # handed the product owner's role on, in a change approved on its own
    "was_a_contact": 403,  # was the secondary technical lead until the team took them off
    "uninvolved": 303,
}


@pytest.fixture
def decided_by_whom(app):
    from tests.requests.test_day_two import BIGGER_CPU, changed, provision

    admins = {
        who: builders.make_user(Role.SUPER_ADMIN, email=f"{who}@example.com")
        for who in (*DECIDERS, "builder")
    }
    team = builders.make_user(email="team@example.com")
    req = builders.submit(
        admins["created_it"],
        owner=ContactData("Ada", "Asked", admins["asked_before"].email),
        primary_lead=ContactData("Ida", "Contact", admins["is_a_contact"].email),
        secondary_lead=ContactData("Wes", "Was", admins["was_a_contact"].email),
    )
    request_services.decide(req.id, admins["builder"], approve=True)
    db.session.commit()
    provision(req)
    product = req.product
    for actor, what in (
        (admins["asked_before"], {"owner": ContactData("Tia", "Team", team.email)}),
        (team, {"secondary_lead": None}),
    ):
        handover = request_services.submit_edit(
            product,
            changed(product, **what),
            actor,
            justification="Two more services go live in March.",
        )
        db.session.commit()
        provision(handover)
    increase = request_services.submit_edit(
        product,
        changed(product, quotas={"prod": {"cpu": BIGGER_CPU}}),
        admins["submitted_it"],
        justification="Two more services go live in March.",
    )
    db.session.commit()
    assert increase.is_pending
    return {who: user.email for who, user in admins.items()}, increase.id


@pytest.mark.parametrize(("who", "expected"), DECIDERS.items())
def test_separation_of_duties_matrix(client, decided_by_whom, who, expected):
    emails, request_id = decided_by_whom
    builders.login(client, SimpleNamespace(email=emails[who]))

    response = builders.post(
        client, f"/admin/requests/{request_id}/decision", {"decision": "approve"}
    )

    assert response.status_code == expected
    status = db.session.scalar(select(Request.status).where(Request.id == request_id))
    assert status == (RequestStatus.APPROVED if expected == 303 else RequestStatus.PENDING)
