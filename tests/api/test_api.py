"""/api/v1 with the outcomes of the forms: a decrease applied at once, an increase waiting with its
reason, a second open request refused, separation of duties; token scopes, expiry, revocation
and limits; idempotent POSTs; ETags; problem details; the OpenAPI document."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from registry.api import tokens
from registry.api.models import Access, ApiToken, Scope
from registry.audit.models import AuditEvent
from registry.extensions import db
from registry.products.models import Product
from registry.requests import services
from registry.requests.models import Request
from registry.timeutil import utcnow
from tests import builders
from tests.requests.test_day_two import BIGGER_CPU, live_product, provision

SMALLER_STORAGE = "storage-1"


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


@pytest.fixture
def team(app, owner, admin):
    """A live product and a token of its team that reads and asks for changes."""
    product = live_product(owner, admin)
    token, secret = tokens.create("deploy pipeline", Scope.PRODUCT, Access.REQUEST, owner,
                                  product=product)  # fmt: skip
    db.session.commit()
    return product, token, bearer(secret)


def test_a_team_token_reads_its_product_and_nothing_else(app, client, team, owner, admin):
    product, _, headers = team
    other = live_product(owner, admin)
    listed = client.get("/api/v1/products", headers=headers)
    assert listed.status_code == 200
    assert [p["licence_plate"] for p in listed.json["items"]] == [product.licence_plate]
    one = client.get(f"/api/v1/products/{product.licence_plate}", headers=headers).json
    assert one["state"] == "active" and len(one["namespaces"]) == 4
    assert one["contacts"]["owner"]["email"] == product.contact_emails[0]
    hidden = client.get(f"/api/v1/products/{other.licence_plate}", headers=headers)
    assert hidden.status_code == 404 and hidden.mimetype == "application/problem+json"
    assert hidden.json["status"] == 404 and hidden.json["title"] == "Not found"
    create = db.session.scalar(select(Request).where(Request.product_id == other.id))
    assert client.get(f"/api/v1/requests/{create.id}", headers=headers).status_code == 404
    mine = client.get("/api/v1/requests", headers=headers).json["items"]
    assert {r["id"] for r in mine} == {
        r.id for r in db.session.scalars(select(Request).where(Request.product_id == product.id))
    }


def test_a_decrease_applies_at_once_and_an_increase_waits_with_its_reason(app, client, team):
    product, token, headers = team
    url = f"/api/v1/products/{product.licence_plate}/changes"
    wrong = client.post(url, json={"quotas": {"prod": {"cpu": "cpu-request-3-limit-9"}}},
                        headers=headers)  # fmt: skip
    assert wrong.status_code == 422 and wrong.mimetype == "application/problem+json"
    assert wrong.json["errors"][0]["field"] == "quotas.prod.cpu"

    more = {"quotas": {"prod": {"cpu": BIGGER_CPU}}}
    no_reason = client.post(url, json=more, headers=headers)
    assert no_reason.status_code == 422
    assert no_reason.json["errors"] == [
        {"field": "justification", "message": no_reason.json["detail"]}
    ]
    waiting = client.post(url, json={**more, "justification": "Spring intake."}, headers=headers)
    assert waiting.status_code == 201, waiting.json
    assert waiting.json["status"] == "pending" and waiting.json["justification"] == "Spring intake."
    assert waiting.json["requested_by"] == "API token “deploy pipeline”"
    assert waiting.headers["Location"] == f"/api/v1/requests/{waiting.json['id']}"
    # One open request per product, as on the form.
    again = client.post(url, json={"description": "Counting salmon."}, headers=headers)
    assert again.status_code == 409 and "already has an open request" in again.json["detail"]

    cancelled = client.post(f"/api/v1/requests/{waiting.json['id']}/cancel", headers=headers)
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    less = client.post(url, json={"description": "Counting salmon."}, headers=headers)
    assert less.status_code == 201 and less.json["status"] == "approved"
    assert less.json["decided_by"] is None  # the rules approved it
    # The token's account gets no email; the team does.
    req = db.session.get(Request, less.json["id"])
    assert req.requested_by_id == token.user_id and req.requested_by.is_machine


def test_the_same_idempotency_key_makes_one_request(app, client, team):
    product, _, headers = team
    url = f"/api/v1/products/{product.licence_plate}/changes"
    body = {"description": "Now with a map."}
    first = client.post(url, json=body, headers={**headers, "Idempotency-Key": "run-42"})
    second = client.post(url, json=body, headers={**headers, "Idempotency-Key": "run-42"})
    # The same answer, the same request: the second call made nothing.
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json == second.json and second.headers["Location"] == first.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(Request).where(
        Request.product_id == product.id, Request.type == "edit")) == 1  # fmt: skip
    bad = client.post(url, json=body, headers={**headers, "Idempotency-Key": "no spaces"})
    assert bad.status_code == 422


def test_a_deletion_needs_a_reason(app, client, team):
    product, _, headers = team
    url = f"/api/v1/products/{product.licence_plate}/deletion"
    assert client.post(url, json={}, headers=headers).status_code == 422
    made = client.post(url, json={"reason": "Moved to the new platform."}, headers=headers)
    assert made.status_code == 201 and made.json["kind"] == "delete"
    assert made.json["status"] == "pending"


def test_a_read_token_cannot_ask_and_a_team_token_cannot_decide(app, client, team, owner):
    product, _, headers = team
    _, secret = tokens.create("dashboard", Scope.PRODUCT, Access.READ, owner, product=product)
    db.session.commit()
    url = f"/api/v1/products/{product.licence_plate}/changes"
    refused = client.post(url, json={"description": "x"}, headers=bearer(secret))
    assert refused.status_code == 403 and "reads only" in refused.json["detail"]
    decide = client.post("/api/v1/requests/1/decision", json={"decision": "approve"},
                         headers=headers)  # fmt: skip
    assert decide.status_code == 403


def test_expired_revoked_and_unknown_tokens_are_refused(app, client, team, owner):
    product, token, headers = team
    assert client.get("/api/v1/products", headers={}).status_code == 401
    unknown = client.get("/api/v1/products", headers=bearer("prt_nothing"))
    assert unknown.status_code == 401 and unknown.headers["WWW-Authenticate"].startswith("Bearer")
    db.session.execute(update(ApiToken).where(ApiToken.id == token.id)
                       .values(expires_at=utcnow() - timedelta(seconds=1)))  # fmt: skip
    db.session.commit()
    expired = client.get("/api/v1/products", headers=headers)
    assert expired.status_code == 401 and expired.json["detail"] == "This token has expired."
    _, secret = tokens.create("second", Scope.PRODUCT, Access.READ, owner, product=product)
    db.session.commit()
    assert client.get("/api/v1/products", headers=bearer(secret)).status_code == 200
    second = db.session.scalar(select(ApiToken).where(ApiToken.name == "second"))
    tokens.revoke(second, owner)
    db.session.commit()
    revoked = client.get("/api/v1/products", headers=bearer(secret))
    assert revoked.status_code == 401 and revoked.json["detail"] == "This token was revoked."
    actions = set(db.session.scalars(select(AuditEvent.action)))
    assert {"api_token_created", "api_token_revoked"} <= actions


def test_a_super_admin_token_decides_with_separation_of_duties(app, client, team, owner, admin):
    product, _, headers = team
    other_admin = builders.make_user(builders.Role.SUPER_ADMIN, email="ada2@example.com")
    waiting = client.post(
        f"/api/v1/products/{product.licence_plate}/changes",
        json={"quotas": {"prod": {"cpu": BIGGER_CPU}}, "justification": "Spring intake."},
        headers=headers,
    ).json
    # The admin who approved the product's creation had no hand in it: they may decide.
    _, deciding = tokens.create("approvals", Scope.ALL, Access.DECIDE, other_admin)
    db.session.commit()
    url = f"/api/v1/requests/{waiting['id']}/decision"
    approved = client.post(url, json={"decision": "approve", "quota_ends_on": None},
                           headers=bearer(deciding))  # fmt: skip
    assert approved.status_code == 200, approved.json
    assert approved.json["status"] == "approved"
    assert approved.json["decided_by"] == "API token “approvals”"
    # A token made by the product's own contact is refused, whoever the token is.
    contact = builders.make_user(builders.Role.SUPER_ADMIN, email=product.contact_emails[0])
    _, theirs = tokens.create("mine", Scope.ALL, Access.DECIDE, contact)
    db.session.commit()
    provision(db.session.get(Request, waiting["id"]))
    second = client.post(
        f"/api/v1/products/{product.licence_plate}/changes",
        json={"quotas": {"dev": {"cpu": BIGGER_CPU}}, "justification": "More."},
        headers=headers,
    ).json
    refused = client.post(f"/api/v1/requests/{second['id']}/decision",
                          json={"decision": "approve"}, headers=bearer(theirs))  # fmt: skip
    assert refused.status_code == 403 and "made this token" in refused.json["detail"]


def test_reads_carry_an_etag_and_answer_304_when_nothing_changed(app, client, team):
    product, _, headers = team
    url = f"/api/v1/products/{product.licence_plate}"
    first = client.get(url, headers=headers)
    tag = first.headers["ETag"]
    assert client.get(url, headers={**headers, "If-None-Match": tag}).status_code == 304
    client.post(f"{url}/changes", json={"description": "Now with a map."}, headers=headers)
    assert client.get(url, headers={**headers, "If-None-Match": tag}).status_code == 200


def test_the_cluster_state_answers_304_until_a_product_changes(app, client, team, admin):
    product, _, _ = team
    _, secret = tokens.create("gitops", Scope.ALL, Access.READ, admin)
    db.session.commit()
    url = "/api/v1/clusters/silver/state"
    state = client.get(url, headers=bearer(secret))
    assert [p["licence_plate"] for p in state.json["products"]] == [product.licence_plate]
    tag = state.headers["ETag"]
    assert client.get(url, headers={**bearer(secret), "If-None-Match": tag}).status_code == 304


def test_a_token_makes_at_most_the_calls_a_minute_allows(app, client, team):
    """Seven calls at three a minute: whichever minute boundary falls among them, a window
    holds four or more of them, so one is refused."""
    app.config["API_CALLS_PER_MINUTE"] = 3
    _, _, headers = team
    answers = [client.get("/api/v1/products", headers=headers) for _ in range(7)]
    statuses = [a.status_code for a in answers]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses, statuses
    refused = answers[statuses.index(429)]
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert "made 3 calls this minute" in refused.json["detail"]


def test_the_openapi_document_lists_every_call(app, client):
    doc = client.get("/api/v1/openapi.json").json
    assert doc["openapi"] == "3.1.0"
    api_rules = {
        rule.rule.replace("<", "{").replace(">", "}").replace("{id:", "{")
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint not in (
            "api.openapi_document", "api.reference_page", "api.try_page")
    }  # fmt: skip
    assert api_rules == set(doc["paths"])
    assert "application/problem+json" in str(doc["paths"]["/api/v1/products"]["get"]["responses"])
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "GET /api/v1/products/{plate}" in page and "schema-Problem" in page


def test_the_team_makes_and_revokes_a_token_on_the_product_page(app, client, owner, admin):
    product = live_product(owner, admin)
    builders.login(client, owner)
    made = builders.post(client, f"/products/{product.licence_plate}/api-tokens",
                         {"name": "nightly", "access": "request", "days": "30"})  # fmt: skip
    assert made.status_code == 200
    html = made.get_data(as_text=True)
    [token] = db.session.scalars(select(ApiToken))
    secret = html.split('id="token-secret" type="text" readonly value="')[1].split('"')[0]
    assert secret.startswith("prt_") and token.token_hash != secret
    assert client.get("/api/v1/products", headers=bearer(secret)).status_code == 200
    page = client.get(f"/products/{product.licence_plate}").get_data(as_text=True)
    assert "“nightly”" in page and secret not in page
    revoked = builders.post(
        client, f"/products/{product.licence_plate}/api-tokens/{token.id}/revoke"
    )
    assert revoked.status_code == 303
    assert client.get("/api/v1/products", headers=bearer(secret)).status_code == 401
    # The product survives its maker: the token's own account asked, not the owner.
    assert db.session.get(Product, product.id) is not None


def new_product_body(**overrides) -> dict:
    quotas = {env: dict(builders.DEFAULT_QUOTAS) for env in ("tools", "dev", "test", "prod")}
    body = {
        "name": "Salmon Counts API",
        "description": "Counts of salmon at the weirs.",
        "ministry": "CITZ",
        "cluster": "silver",
        "owner": {"first_name": "Pat", "last_name": "Owner", "email": "pat.api@example.com"},
        "primary_lead": {"first_name": "Tam", "last_name": "Lead", "email": "tam.api@example.com"},
        "quotas": quotas,
    }
    body.update(overrides)
    return body


def test_a_team_token_asks_for_a_new_product_and_then_follows_it(app, client, team):
    _, _, headers = team
    bad = client.post("/api/v1/products", json=new_product_body(
        primary_lead={"first_name": "Pat", "last_name": "Owner", "email": "pat.api@example.com"}
    ), headers=headers)  # fmt: skip
    assert bad.status_code == 422
    assert any(e["field"].startswith("primary_lead") for e in bad.json["errors"]), bad.json
    made = client.post("/api/v1/products", json=new_product_body(), headers=headers)
    assert made.status_code == 201, made.json
    assert made.json["kind"] == "create" and made.json["status"] == "pending"
    plate = made.json["licence_plate"]
    # The token reads what it asked for, and only that besides its own product.
    assert client.get(f"/api/v1/products/{plate}", headers=headers).json["state"] == "requested"
    listed = {
        p["licence_plate"] for p in client.get("/api/v1/products", headers=headers).json["items"]
    }
    assert plate in listed and len(listed) == 2


def test_a_rejected_product_is_asked_for_again(app, client, team, admin):
    _, _, headers = team
    made = client.post("/api/v1/products", json=new_product_body(), headers=headers).json
    services.decide(made["id"], admin, approve=False, comment="Use the shared namespace.")
    db.session.commit()
    url = f"/api/v1/products/{made['licence_plate']}/request-again"
    again = client.post(url, json=new_product_body(description="Now with a reason."),
                        headers=headers)  # fmt: skip
    assert again.status_code == 201, again.json
    assert again.json["licence_plate"] == made["licence_plate"] and again.json["id"] != made["id"]


def test_a_token_asks_at_most_as_often_as_a_person_may(app, client, team):
    """The form's hourly number of requests (REQUEST_SUBMISSIONS_PER_HOUR) holds for a token."""
    app.config["REQUEST_SUBMISSIONS_PER_HOUR"] = 2
    product, _, headers = team
    url = f"/api/v1/products/{product.licence_plate}/changes"
    statuses = []
    for n in range(3):
        answer = client.post(url, json={"description": f"Version {n}."}, headers=headers)
        statuses.append(answer.status_code)
        if answer.status_code == 201:  # applied, so that the product is free again
            provision(db.session.get(Request, answer.json["id"]))
    assert statuses == [201, 201, 429]
    assert "as many as one person may" in answer.json["detail"]
    assert int(answer.headers["Retry-After"]) > 0


def test_a_comment_or_a_decision_sent_twice_with_a_key_happens_once(app, client, team, admin):
    product, _, headers = team
    waiting = client.post(
        f"/api/v1/products/{product.licence_plate}/changes",
        json={"quotas": {"prod": {"cpu": BIGGER_CPU}}, "justification": "Spring intake."},
        headers=headers,
    ).json
    url = f"/api/v1/requests/{waiting['id']}/comments"
    keyed = {**headers, "Idempotency-Key": "comment-1"}
    answers = [client.post(url, json={"body": "Load test on Tuesday."}, headers=keyed)
               for _ in range(2)]  # fmt: skip
    assert [a.status_code for a in answers] == [201, 201]
    comments = [e for e in answers[1].json["timeline"] if e["kind"] == "comment"]
    assert len(comments) == 1
    req = db.session.get(Request, waiting["id"])
    assert sum(1 for e in req.events if e.kind == "comment") == 1
    # The same key for another call is refused.
    other = client.post(f"/api/v1/requests/{waiting['id']}/cancel", headers=keyed)
    assert other.status_code == 422 and "another call" in other.json["detail"]
