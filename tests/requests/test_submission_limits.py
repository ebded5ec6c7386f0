"""How much one person may send, and to whom: a product team member's requests and comments
within an hour (REQUEST_SUBMISSIONS_PER_HOUR; each may email addresses they typed), refused with
the form as it was typed, and the domains a product's contacts must be at
(CONTACT_EMAIL_DOMAINS)."""

import html
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from registry import create_app
from registry.extensions import db
from registry.products.services import ContactData
from registry.requests import services
from registry.requests.models import Request, RequestEvent
from registry.timeutil import utcnow
from tests import builders
from tests.requests.test_day_two import form_body, live_product, provision
from tests.requests.test_product_form import (
    NOTHING_STORED,
    VALIDATE,
    field_errors,
    input_value,
    own_fragment,
    stored_rows,
    textarea_value,
)

NEW = "/products/new"
THREE_SENT = (
    "You have sent 3 requests and comments within the last hour, as many as one person may."
)


def sent_by(person) -> int:
    """Requests and comments ``person`` has sent, as committed now."""
    db.session.rollback()
    requests = db.session.scalar(
        select(func.count()).select_from(Request).where(Request.requested_by_id == person.id)
    )
    comments = db.session.scalar(
        select(func.count())
        .select_from(RequestEvent)
        .where(RequestEvent.actor_id == person.id, RequestEvent.kind == "comment")
    )
    return requests + comments


def an_hour_ago(request: Request) -> None:
    """Make ``request`` one sent a little over an hour ago."""
    db.session.execute(
        update(Request)
        .where(Request.id == request.id)
        .values(created_at=utcnow() - timedelta(minutes=61))
    )
    db.session.commit()


# --- the hourly number ----------------------------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_new_product_past_the_hourly_number_comes_back_as_typed(app, client, owner, htmx):
    app.config["REQUEST_SUBMISSIONS_PER_HOUR"] = 3
    first = builders.submit(owner)
    builders.submit(owner)
    builders.submit(owner)
    builders.login(client, owner)
    typed = builders.form_data(
        name="Salmon counts",
        description="Counts of salmon.\nEvery spring.",
        submission_key=uuid.uuid4().hex,
        **{"product_owner-email": "pat.owner@example.com"},
    )
    before = stored_rows()

    response = builders.post(client, NEW, typed, htmx=htmx)

    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert page.lstrip().startswith('<form id="product-form"') is htmx
    assert THREE_SENT in page
    assert "Nothing was sent: try again in 60 minutes. What you wrote is kept here." in page
    assert input_value(page, "name") == "Salmon counts"
    assert textarea_value(page, "description") == "Counts of salmon.\nEvery spring."
    assert input_value(page, "product_owner-email") == "pat.owner@example.com"
    assert input_value(page, "submission_key") == typed["submission_key"]
    assert stored_rows() == before

    # Once the first is an hour old, the same form goes through.
    an_hour_ago(first)
    assert builders.post(client, NEW, typed, htmx=htmx).status_code in (204, 303)
    assert sent_by(owner) == 4


def test_every_kind_of_request_counts_and_is_refused_with_what_was_typed(client, owner, admin):
    product = live_product(owner, admin)  # one request: the product's creation
    rejected = builders.submit(owner, name="Fish ladders")
    services.add_comment(rejected, owner, "The ministry of forests pays.")
    db.session.commit()
    services.decide(rejected.id, admin, approve=False, comment="Say so in the form.")
    db.session.commit()
    client.application.config["REQUEST_SUBMISSIONS_PER_HOUR"] = 3
    builders.login(client, owner)
    plate = product.licence_plate

    change = builders.post(
        client,
        f"/products/{plate}/change",
        form_body(product, description="Counts of salmon, now by river.", confirmed="yes"),
    )
    assert change.status_code == 429
    assert THREE_SENT in change.get_data(as_text=True)
    assert "<h3>Your change</h3>" in change.get_data(as_text=True)  # as it was checked
    assert textarea_value(change.get_data(as_text=True), "description") == (
        "Counts of salmon, now by river."
    )

    deletion = builders.post(
        client, f"/products/{plate}/delete", {"confirmation": plate, "reason": "Moved on."}
    )
    assert deletion.status_code == 429
    assert THREE_SENT in deletion.get_data(as_text=True)
    assert input_value(deletion.get_data(as_text=True), "confirmation") == plate

    again_plate = rejected.product.licence_plate
    again = builders.post(
        client,
        f"/products/{again_plate}/request-again",
        builders.form_data(name="Fish ladders", ministry="FLNR"),
    )
    assert again.status_code == 429
    assert THREE_SENT in again.get_data(as_text=True)
    assert input_value(again.get_data(as_text=True), "name") == "Fish ladders"

    assert sent_by(owner) == 3


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
def test_a_comment_past_the_hourly_number_keeps_its_text(app, client, owner, admin, htmx):
    app.config["REQUEST_SUBMISSIONS_PER_HOUR"] = 3
    req = builders.submit(owner)
    builders.login(client, owner)
    url = f"/requests/{req.id}/comments"
    for text in ("Is the name right?", "It should be plural."):
        assert builders.post(client, url, {"body": text}, htmx=htmx).status_code in (200, 303)

    response = builders.post(client, url, {"body": "And the description <too>."}, htmx=htmx)

    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert THREE_SENT in page
    assert "And the description &lt;too&gt;.</textarea>" in page
    assert sent_by(owner) == 3
    # The super admins answer as often as they need to.
    builders.post(client, "/logout")
    builders.login(client, admin)
    for n in range(4):
        answer = builders.post(client, url, {"body": f"Answer {n}."}, htmx=htmx)
        assert answer.status_code in (200, 303)
    assert sent_by(admin) == 4


def test_a_form_sent_again_shows_its_request_rather_than_a_refusal(app, client, owner):
    app.config["REQUEST_SUBMISSIONS_PER_HOUR"] = 1
    builders.login(client, owner)
    typed = builders.form_data(submission_key=uuid.uuid4().hex)
    first = builders.post(client, NEW, typed)
    assert first.status_code == 303
    again = builders.post(client, NEW, typed)  # a double click, a re-sent POST
    assert (again.status_code, again.location) == (303, first.location)
    refused = builders.post(client, NEW, builders.form_data())
    assert refused.status_code == 429


def test_super_admins_and_a_limit_of_zero_are_not_held_up(app, client, owner, admin):
    app.config["REQUEST_SUBMISSIONS_PER_HOUR"] = 1
    builders.login(client, admin)
    for _ in range(3):
        assert builders.post(client, NEW, builders.form_data()).status_code == 303
    builders.post(client, "/logout")
    app.config["REQUEST_SUBMISSIONS_PER_HOUR"] = 0
    builders.login(client, owner)
    for _ in range(3):
        assert builders.post(client, NEW, builders.form_data()).status_code == 303


@pytest.mark.parametrize("value", [-1, "many", True, 2.5])
def test_an_hourly_number_that_is_none_stops_the_start(database_url, value):
    with pytest.raises(RuntimeError, match="REGISTRY_REQUEST_SUBMISSIONS_PER_HOUR"):
        create_app({"SQLALCHEMY_DATABASE_URI": database_url, "REQUEST_SUBMISSIONS_PER_HOUR": value})


# --- contact email domains ------------------------------------------------------------------------

OUTSIDE = (
    "Use an email address at gov.bc.ca: a product's contacts must be people of the organization."
)


def test_contacts_outside_the_allowed_domains_are_refused_field_by_field(app, client, owner):
    app.config["CONTACT_EMAIL_DOMAINS"] = ["gov.bc.ca"]
    builders.login(client, owner)
    typed = builders.form_data(
        **{
            "product_owner-email": "pat.owner@gov.bc.ca",
            "primary_lead-email": "tam.lead@health.gov.bc.ca",  # a subdomain
            "secondary_lead-first_name": "Sam",
            "secondary_lead-last_name": "Second",
            "secondary_lead-email": "sam@notgov.bc.ca",
        }
    )

    response = builders.post(client, NEW, typed)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert field_errors(page) == {"secondary_lead-email": OUTSIDE}
    assert input_value(page, "secondary_lead-email") == "sam@notgov.bc.ca"
    assert stored_rows() == NOTHING_STORED
    # Inline, as the field is left.
    inline = builders.post(client, f"{VALIDATE}?field=secondary_lead-email", typed, htmx=True)
    assert html.unescape(own_fragment(inline.get_data(as_text=True))["text"]) == OUTSIDE
    # At an allowed domain, the same form goes through.
    typed["secondary_lead-email"] = "sam.second@gov.bc.ca"
    assert builders.post(client, NEW, typed).status_code == 303


def test_a_change_that_brings_in_an_outside_contact_is_refused(client, owner, admin):
    req = builders.submit(
        owner,
        owner=ContactData("Pat", "Owner", "pat@gov.bc.ca"),
        primary_lead=ContactData("Tam", "Lead", "tam@gov.bc.ca"),
    )
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    provision(req)
    product = req.product
    client.application.config["CONTACT_EMAIL_DOMAINS"] = ["gov.bc.ca"]
    builders.login(client, owner)
    body = form_body(product, **{"primary_lead-email": "tam@example.com", "confirmed": "yes"})
    response = builders.post(client, f"/products/{product.licence_plate}/change", body)
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True)) == {"primary_lead-email": OUTSIDE}
    assert sent_by(owner) == 1


def test_the_allowed_domains_are_a_setting(database_url, monkeypatch):
    monkeypatch.setenv("REGISTRY_CONTACT_EMAIL_DOMAINS", " gov.bc.ca, @Health.Gov.BC.ca ,")
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url})
    assert app.config["CONTACT_EMAIL_DOMAINS"] == ["gov.bc.ca", "health.gov.bc.ca"]
    with pytest.raises(RuntimeError, match="REGISTRY_CONTACT_EMAIL_DOMAINS: 'gov bc ca'"):
        create_app({"SQLALCHEMY_DATABASE_URI": database_url, "CONTACT_EMAIL_DOMAINS": "gov bc ca"})
