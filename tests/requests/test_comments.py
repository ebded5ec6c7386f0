"""Comments on a request: the team and the super admins write on a pending or failed request,
support only reads; each comment is a timeline entry that moves nothing, emailed to the other
side through the outbox."""

import json

import pytest
from sqlalchemy import select

from registry import contract
from registry.extensions import db
from registry.outbox.models import OutboxEmail
from registry.products.services import ContactData
from registry.provisioning import reports as status_reports
from registry.requests import services
from registry.requests.models import Request, RequestEvent, RequestStatus
from tests import builders


@pytest.fixture
def team(app):
    """A requester and a product owner who is someone else, and two super admins."""
    from registry.auth.models import Role

    return {
        "requester": builders.make_user(email="rita@example.com", name="Rita Requester"),
        "owner": builders.make_user(email="cora@example.com", name="Cora Contact"),
        "admin": builders.make_user(Role.SUPER_ADMIN, email="ada@example.com", name="Ada Admin"),
        "admin2": builders.make_user(Role.SUPER_ADMIN, email="sam@example.com", name="Sam Second"),
        "support": builders.make_user(Role.SUPPORT, email="sue@example.com", name="Sue Support"),
    }


@pytest.fixture
def pending(team) -> Request:
    return builders.submit(
        team["requester"],
        owner=ContactData("Cora", "Contact", "cora@example.com"),
        primary_lead=ContactData("Tam", "Lead", "tam@example.com"),
    )


def comment(client, request_id, body, htmx=False):
    return builders.post(client, f"/requests/{request_id}/comments", {"body": body}, htmx=htmx)


def comment_emails(request_id) -> list[OutboxEmail]:
    emails = db.session.scalars(
        select(OutboxEmail)
        .where(OutboxEmail.request_id == request_id, OutboxEmail.kind == "comment")
        .order_by(OutboxEmail.id)
    ).all()
    db.session.rollback()
    return list(emails)


def comments(request_id) -> list[RequestEvent]:
    events = db.session.scalars(
        select(RequestEvent)
        .where(RequestEvent.request_id == request_id, RequestEvent.kind == "comment")
        .order_by(RequestEvent.id)
    ).all()
    db.session.rollback()
    return list(events)


def test_a_team_members_question_goes_to_the_super_admins_and_on_the_timeline(
    client, team, pending
):
    builders.login(client, team["owner"])
    response = comment(client, pending.id, "  Can we have the gold cluster instead?  ")
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/requests/{pending.id}#timeline")

    [entry] = comments(pending.id)
    assert entry.note == "Can we have the gold cluster instead?"
    assert entry.actor_id == team["owner"].id
    # It moves nothing: the request is as pending as it was.
    assert entry.from_status == entry.to_status == RequestStatus.PENDING.value
    assert db.session.get(Request, pending.id).status == RequestStatus.PENDING.value

    [email] = comment_emails(pending.id)
    assert sorted(email.recipients) == [
        "ada@example.com",
        "reviewers@example.com",  # the extra reviewer address: it reviews too
        "sam@example.com",
    ]
    assert email.subject.startswith("[Product Registry] New comment:")
    assert "Can we have the gold cluster instead?" in email.body_text
    assert "Cora Contact (product team)" in email.body_text

    page = client.get(f"/requests/{pending.id}").get_data(as_text=True)
    assert "Can we have the gold cluster instead?" in page
    assert "Your comment is on the timeline." in page
    assert f'id="comment-{entry.id}"' in page


def test_a_super_admins_answer_goes_to_the_team_not_back_to_the_admins(client, team, pending):
    builders.login(client, team["admin"])
    assert comment(client, pending.id, "Gold needs a business case: send it?").status_code == 303
    [email] = comment_emails(pending.id)
    # The contacts and the requester; neither super admin.
    assert sorted(email.recipients) == ["cora@example.com", "rita@example.com", "tam@example.com"]
    assert "Ada Admin (super admin)" in email.body_text
    [entry] = comments(pending.id)
    assert entry.actor_id == team["admin"].id


def test_the_author_is_never_emailed_their_own_comment(client, team, pending):
    builders.login(client, team["requester"])
    comment(client, pending.id, "Answering: yes.")
    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})
    builders.login(client, team["admin"])
    comment(client, pending.id, "Thanks.")
    first, second = comment_emails(pending.id)
    assert "rita@example.com" not in first.recipients
    assert "ada@example.com" not in second.recipients


def test_htmx_appends_the_comment_and_gives_back_an_empty_form(client, team, pending):
    builders.login(client, team["requester"])
    response = comment(client, pending.id, "Here is the business case.", htmx=True)
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    [entry] = comments(pending.id)
    # The form again, empty, and the entry out of band at the end of the timeline.
    assert 'id="comment-form"' in body
    assert "Here is the business case.</textarea>" not in body
    assert '<ol hx-swap-oob="beforeend:#timeline">' in body
    assert f'id="comment-{entry.id}"' in body
    assert "Rita Requester" in body
    assert "style=" not in body and "<script" not in body


@pytest.mark.parametrize("htmx", [False, True])
def test_an_empty_or_too_long_comment_is_refused_with_the_reason(client, team, pending, htmx):
    builders.login(client, team["owner"])
    empty = comment(client, pending.id, "   ", htmx=htmx)
    assert empty.status_code == 422
    assert "it is empty" in empty.get_data(as_text=True)

    long = "x" * (services.COMMENT_MAX + 1)
    response = comment(client, pending.id, long, htmx=htmx)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert f"at most {services.COMMENT_MAX:,} characters; this one has 2,001" in body
    assert long in body  # the text is kept for the author to shorten
    assert comments(pending.id) == [] and comment_emails(pending.id) == []


def test_support_reads_but_cannot_comment(client, team, pending):
    builders.login(client, team["support"])
    page = client.get(f"/requests/{pending.id}").get_data(as_text=True)
    assert 'id="comment-form"' not in page
    response = comment(client, pending.id, "Just checking.")
    assert response.status_code == 403
    assert comments(pending.id) == []


def test_someone_outside_the_team_cannot_even_see_the_request(client, team, pending):
    stranger = builders.make_user(email="una@example.com")
    builders.login(client, stranger)
    assert comment(client, pending.id, "Hello?").status_code == 404
    assert comments(pending.id) == []


def _approved(team, pending) -> Request:
    services.decide(pending.id, team["admin"], approve=True)
    db.session.commit()
    return pending


def test_no_comment_on_an_approved_request(client, team, pending):
    _approved(team, pending)
    builders.login(client, team["owner"])
    page = client.get(f"/requests/{pending.id}").get_data(as_text=True)
    assert 'id="comment-form"' not in page
    response = comment(client, pending.id, "Too late?")
    assert response.status_code == 409
    assert "comments are for pending and failed requests only" in response.get_data(as_text=True)
    assert comments(pending.id) == [] and comment_emails(pending.id) == []


def test_a_failed_request_takes_comments_and_still_fails_the_same_way(client, team, pending):
    _approved(team, pending)
    body = contract.report_body(pending.product.licence_plate, "silver", pending.id, "failed", "x")
    status_reports.apply_report(contract.parse_report(json.dumps(body)))
    db.session.commit()
    builders.login(client, team["admin"])
    page = client.get(f"/requests/{pending.id}").get_data(as_text=True)
    assert 'id="comment-form"' in page
    assert comment(client, pending.id, "Quota service was down; re-sending.").status_code == 303
    req = db.session.get(Request, pending.id)
    assert req.status == RequestStatus.FAILED.value
    labels = [e.to_label for e in req.events]
    assert labels[-1] == "Comment"
    # The failure is still the one the re-send and the operations page see.
    assert req.events[-2].failed_step == "workflow_started"
    assert req.events[-1].failed_step is None
    # A re-send is still possible from a failed request with a comment on top.
    status_reports.resend(req.id, team["admin2"])
    db.session.commit()
    assert db.session.get(Request, pending.id).status == RequestStatus.APPROVED.value


def test_the_live_block_closes_the_comment_form_and_the_old_flash_when_the_status_moves(
    client, team, pending
):
    builders.login(client, team["requester"])
    poll = {"HX-Request": "true"}
    url = f"/requests/{pending.id}?shown=pending"
    quiet = client.get(url, headers=poll).get_data(as_text=True)
    assert 'hx-swap-oob="true"' not in quiet  # nothing moved: only the live block

    services.decide(pending.id, team["admin"], approve=False, comment="Not this quarter.")
    db.session.commit()
    moved = client.get(url, headers=poll).get_data(as_text=True)
    assert '<div id="flashes" hx-swap-oob="true"></div>' in moved
    assert '<div id="comment-area" hx-swap-oob="true">' in moved
    assert "Comments are closed: the request is rejected now." in moved
    assert "Add the comment" not in moved
    # The block comes back asking from the new status: the next poll is quiet again.
    assert f"/requests/{pending.id}?shown=rejected" not in moved  # final: it stops asking
    page = client.get(f"/requests/{pending.id}").get_data(as_text=True)
    assert '<div id="comment-area">' in page and "Add the comment" not in page


@pytest.mark.browser
def test_a_request_page_left_open_follows_a_rejection(live_server, page, team, pending):
    from playwright.sync_api import expect

    from tests.browser.test_browser import sign_in

    sign_in(page, live_server, team["requester"])
    page.goto(f"{live_server}/requests/{pending.id}")
    expect(page.get_by_role("button", name="Add the comment")).to_be_visible()
    # What sending it said ("…is with the super admins for review") stands for the old status.
    page.evaluate(
        "document.getElementById('flashes').innerHTML ="
        " '<p class=\"flash flash-success\">With the super admins for review.</p>'"
    )
    services.decide(pending.id, team["admin"], approve=False, comment="Not this quarter.")
    db.session.commit()
    expect(page.locator("#request-summary .badge")).to_have_text("Rejected", timeout=10_000)
    expect(page.locator("#flashes")).to_be_empty()
    expect(page.get_by_role("button", name="Add the comment")).to_have_count(0)
    expect(page.locator("#comment-area")).to_contain_text("Comments are closed")
