"""The pages that matter, in a real Chromium: inline validation on the new product form, deciding
requests from the review queue without a page load, and the requester reading the outcome.

and the requester watching the provisioner's steps arrive on the request page.

Set REGISTRY_SCREENSHOTS=/some/dir to keep screenshots of the form, the queue and a request page.
"""

import json
import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from registry import contract
from registry.extensions import db
from registry.outbox.models import OutboxMessage
from registry.requests.models import Request, RequestStatus
from tests import builders
from tests.support import eventually, run_async

pytestmark = pytest.mark.browser

PASSWORD = "password"  # every builders.make_user account's


def sign_in(page: Page, live_server: str, user) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".who")).to_contain_text(user.name)


def approve_from_queue(browser, live_server: str, admin, request_id: int) -> None:
    """A super admin approves a request from the queue, in a browser of their own."""
    context = browser.new_context()
    try:
        reviewer = context.new_page()
        reviewer.set_default_timeout(10_000)
        sign_in(reviewer, live_server, admin)
        reviewer.goto(f"{live_server}/admin/queue")
        item = reviewer.locator(f"#queue-request-{request_id}")
        item.get_by_role("button", name="Approve").click()
        expect(item).to_have_count(0)
    finally:
        context.close()


class Navigations:
    """Counts the main frame's navigations: an HTMX swap must not add one."""

    def __init__(self, page: Page):
        self.count = 0
        page.on("framenavigated", self._seen)
        self.page = page

    def _seen(self, frame) -> None:
        if frame == self.page.main_frame:
            self.count += 1


def mark_document(page: Page) -> None:
    """A value that lives in this document only: a full page load would wipe it."""
    page.evaluate("window.__marker = 1")


def document_survived(page: Page) -> bool:
    return page.evaluate("window.__marker") == 1


def fill_contact(page: Page, group: str, first: str, last: str, email: str) -> None:
    fieldset = page.get_by_role("group", name=group)
    fieldset.get_by_label("First name").fill(first)
    fieldset.get_by_label("Last name").fill(last)
    fieldset.get_by_label("Email").fill(email)


def test_owner_sees_inline_errors_while_typing_then_submits(
    page: Page, live_server, owner, screenshot
):
    sign_in(page, live_server, owner)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New product").click()
    expect(page.get_by_role("heading", name="Request a new product")).to_be_visible()
    form_url = page.url
    navigations = Navigations(page)
    mark_document(page)

    name = page.get_by_label("Product name")
    name_error = page.locator("#name-error")
    name.fill("1abc")
    name.press("Tab")
    expect(name_error).to_have_text("Product name must start with a letter.")
    # Only the field's own message: the form was not submitted, nothing else was judged yet.
    expect(page.locator("#description-error")).to_have_text("")
    expect(page.get_by_role("alert")).to_have_count(0)
    assert page.url == form_url
    assert navigations.count == 0
    assert document_survived(page)
    screenshot(page, "new-product-inline-error")

    name.fill("Abc river permits")
    name.press("Tab")
    expect(name_error).to_have_text("")
    expect(name_error).to_be_hidden()

    # Submitting too early swaps the form back with every field's message, still in place.
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_role("alert")).to_have_text(
        "Please correct the fields marked below; nothing was saved."
    )
    expect(page.locator("#description-error")).to_have_text("Description is required.")
    expect(page.get_by_label("Product name")).to_have_value("Abc river permits")
    assert page.url == form_url
    assert navigations.count == 0
    assert document_survived(page)

    page.get_by_label("Description").fill("Permits for river crossings.")
    page.get_by_label("Ministry").select_option("CITZ")
    fill_contact(page, "Product owner", "Pat", "Owner", "pat.owner@example.com")
    fill_contact(page, "Primary technical lead", "Tam", "Lead", "tam.lead@example.com")
    assert navigations.count == 0

    # First the summary of what will be asked, in place; only its button sends the request.
    page.get_by_role("button", name="Submit for review").click()
    expect(page.get_by_role("heading", name="Check your request")).to_be_visible()
    expect(page.locator("#review")).to_be_focused()
    expect(page.locator("#review-product")).to_contain_text("Abc river permits")
    assert navigations.count == 0
    screenshot(page, "new-product-summary")
    page.get_by_role("button", name="Send the request").click()
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    expect(page.locator("#request-summary .badge")).to_have_text("Pending approval")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Abc river permits")
    expect(page.locator("#flashes")).to_contain_text("is with the super admins for review")
    screenshot(page, "request-pending")


def test_admin_decides_from_the_queue_without_a_page_load_and_the_requester_sees_the_outcome(
    browser, page: Page, live_server, owner, admin, screenshot
):
    approved = builders.submit(owner, name="Ferry schedules")
    rejected = builders.submit(owner, name="Bridge permits")
    approved_id, rejected_id = approved.id, rejected.id
    approved_plate = approved.product.licence_plate
    rejected_plate = rejected.product.licence_plate

    sign_in(page, live_server, admin)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Review queue").click()
    expect(page).to_have_url(re.compile(r"/admin/queue$"))
    count = page.locator("#queue-count")
    notice = page.locator("#queue-notice")
    approved_item = page.locator(f"#queue-request-{approved_id}")
    rejected_item = page.locator(f"#queue-request-{rejected_id}")
    expect(count).to_have_text("2 pending")
    expect(approved_item).to_be_visible()
    expect(rejected_item).to_be_visible()
    screenshot(page, "queue")
    navigations = Navigations(page)
    mark_document(page)

    # A rejection without a comment: the reason shows on the item, which stays.
    rejected_item.get_by_role("button", name="Reject").click()
    expect(rejected_item.get_by_role("alert")).to_have_text(
        "A rejection needs a comment for the product team."
    )
    expect(count).to_have_text("2 pending")
    expect(page.locator(".queue-item")).to_have_count(2)
    screenshot(page, "queue-reject-needs-comment")

    approved_item.get_by_role("button", name="Approve").click()
    expect(approved_item).to_have_count(0)
    expect(count).to_have_text("1 pending")
    expect(notice).to_have_text(f"Approved Ferry schedules ({approved_plate}).")

    rejected_item.get_by_label("Reason for rejecting").fill("Use the existing bridges product.")
    rejected_item.get_by_role("button", name="Reject").click()
    expect(rejected_item).to_have_count(0)
    expect(count).to_have_text("0 pending")
    expect(notice).to_have_text(f"Rejected Bridge permits ({rejected_plate}).")
    screenshot(page, "queue-emptied")

    assert navigations.count == 0
    assert document_survived(page)
    db.session.expire_all()
    assert db.session.get(Request, approved_id).status == RequestStatus.APPROVED
    assert db.session.get(Request, rejected_id).status == RequestStatus.REJECTED
    assert db.session.get(Request, rejected_id).decision_comment == (
        "Use the existing bridges product."
    )

    # The requester, in a browser of their own.
    context = browser.new_context()
    try:
        requester = context.new_page()
        requester.set_default_timeout(10_000)
        sign_in(requester, live_server, owner)

        requester.goto(f"{live_server}/requests/{approved_id}")
        expect(requester.locator("#request-summary .badge")).to_have_text("Approved")
        expect(requester.locator(".decision")).to_contain_text("Approved by Ada Admin")
        screenshot(requester, "request-approved")

        requester.goto(f"{live_server}/requests/{rejected_id}")
        expect(requester.locator("#request-summary .badge")).to_have_text("Rejected")
        decision = requester.locator(".decision")
        expect(decision).to_contain_text("Rejected by Ada Admin")
        expect(decision).to_contain_text("“Use the existing bridges product.”")
        screenshot(requester, "request-rejected")
    finally:
        context.close()


# The page polls every 2 s and the bridge fetches every second: a step shows within a few.
STEP_TIMEOUT = 10_000


def test_the_requester_watches_each_provisioning_step_arrive_without_a_reload(
    browser, page: Page, live_server, nats_app, nats_server, nats_worker, owner, admin, screenshot
):
    # The bridge (status reports -> database) and the relay (outbox -> JetStream), as served.
    nats_worker()
    req = builders.submit(owner, name="Salmon counts")
    request_id, plate = req.id, req.product.licence_plate

    # A super admin approves it from the queue, in a browser of their own.
    approve_from_queue(browser, live_server, admin, request_id)

    def provisioning_message_sent():
        db.session.expire_all()
        messages = db.session.scalars(
            select(OutboxMessage).where(OutboxMessage.request_id == request_id)
        ).all()
        db.session.rollback()
        return [m.subject for m in messages if m.status == "sent"]

    assert eventually(provisioning_message_sent) == ["registry_project_provisioning_silver"]

    sign_in(page, live_server, owner)
    page.goto(f"{live_server}/requests/{request_id}")
    live = page.locator("#request-live")
    badge = page.locator("#request-summary .badge")
    furthest = page.locator("table.targets tbody td").nth(2)
    steps = page.locator("#timeline li.step")
    expect(badge).to_have_text("Approved")
    expect(page.locator("#request-summary .waiting")).to_have_text(
        "Waiting on the provisioner to start."
    )
    expect(live).to_have_attribute("hx-trigger", "every 2s")
    expect(furthest).to_have_text("Not started")
    expect(steps).to_have_count(0)
    navigations = Navigations(page)
    mark_document(page)

    for done, step in enumerate(contract.STEPS, start=1):
        body = contract.report_body(plate, "silver", request_id, step, f"Step {done} of 8.")
        run_async(
            lambda js, body=body: js.publish(contract.STATUS_SUBJECT, json.dumps(body).encode()),
            nats_server.url,
        )
        entry = page.locator(f"#timeline li.step-{step}")
        expect(entry).to_have_count(1, timeout=STEP_TIMEOUT)
        expect(entry.locator(".what")).to_have_text(contract.STEP_LABELS[step])
        expect(entry.locator(".tag")).to_have_text("silver")
        expect(entry.locator(".note")).to_have_text(f"Step {done} of 8.")
        # One entry per step so far, in the provisioner's order.
        expect(steps).to_have_count(done)
        expect(steps.last).to_have_class(re.compile(rf"\bstep-{step}\b"))
        expect(furthest).to_have_text(contract.STEP_LABELS[step])
        if step != "provisioned":
            expect(badge).to_have_text("Provisioning")
            expect(page.locator("#request-summary .waiting")).to_have_text(
                "Waiting on the provisioner."
            )
            expect(live).to_have_attribute("hx-trigger", "every 2s")
        assert navigations.count == 0
        assert document_survived(page)

    expect(badge).to_have_text("Provisioned")
    expect(page.locator("#request-summary .waiting")).to_have_count(0)
    # Final: the fragment that replaced the live block asks for nothing more.
    expect(live).to_have_count(1)
    expect(page.locator("#request-live[hx-trigger]")).to_have_count(0)
    expect(page.locator("#request-live[hx-get]")).to_have_count(0)
    assert navigations.count == 0
    assert document_survived(page)
    screenshot(page, "request-provisioned")

    db.session.expire_all()
    done = db.session.get(Request, request_id)
    assert done.status == RequestStatus.PROVISIONED
    assert [e.step for e in done.events if e.step] == list(contract.STEPS)
