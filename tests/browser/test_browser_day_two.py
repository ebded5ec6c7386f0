"""Day two in a real Chromium, against the reference provisioner: a team changes its product (the
diff and the path shown before submit), a super admin approves an increase from the queue, the
team deletes the product by typing its plate; "Request again" after a rejection; a double click
on submit makes one product.

Set REGISTRY_SCREENSHOTS=/some/dir to keep screenshots of the pages.
"""

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import func, select

from registry.extensions import db
from registry.products.models import Product
from registry.requests import services
from registry.requests.models import Request
from tests import builders
from tests.browser.test_browser import fill_contact, sign_in
from tests.provisioner.test_provisioner import files_on_main, wait_for

pytestmark = pytest.mark.browser
WAIT = 30_000  # ms: the provisioner runs beside the browser on a loaded machine


def queue_page(browser, live_server, admin) -> Page:
    reviewer = browser.new_context().new_page()
    reviewer.set_default_timeout(10_000)
    sign_in(reviewer, live_server, admin)
    reviewer.goto(f"{live_server}/admin/queue")
    return reviewer


def test_a_team_changes_and_deletes_its_product_in_the_browser(
    page: Page, browser, live_server, provisioner, gitops, owner, admin, screenshot
):
    req = builders.submit(owner, name="Otter sightings")
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    wait_for(req.id, "provisioned")
    plate = req.product.licence_plate

    sign_in(page, live_server, owner)
    page.goto(f"{live_server}/products/{plate}")
    expect(page.locator(".page-head .badge")).to_have_text("Active")

    # A decrease: the form says before submit that it needs no review, then shows the diff.
    page.get_by_role("link", name="Request a change").click()
    expect(page.get_by_label("Product name")).to_have_value("Otter sightings")
    page.get_by_label("Description").fill("Where and when the otters were seen.")
    page.get_by_label("Description").press("Tab")
    expect(page.locator("#change-summary")).to_contain_text("Approved automatically")
    expect(page.locator("#change-summary")).to_contain_text("Description")
    screenshot(page, "change-form")
    page.get_by_role("button", name="Review the change").click()
    expect(page.get_by_role("heading", name="Check your change")).to_be_visible()
    # The pressed button is gone: focus is on the step that took its place, not the page's top.
    expect(page.locator("#review")).to_be_focused()
    expect(page.locator("#change-summary")).to_contain_text("Where and when the otters were seen.")
    screenshot(page, "change-review")
    page.get_by_role("button", name="Apply this change").click()
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    edit_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#timeline")).to_contain_text("Submitted and approved automatically")
    expect(page.locator("#request-summary .badge")).to_have_text("Applied", timeout=WAIT)

    # An increase waits in the queue with its diff; a super admin approves it there.
    page.goto(f"{live_server}/products/{plate}/change")
    page.get_by_label("prod cpu").select_option("cpu-request-2-limit-4")
    expect(page.locator("#change-summary")).to_contain_text(
        "Needs review: prod CPU goes up from 0.5 cores, limit 1.5 to 2 cores, limit 4"
    )
    page.get_by_role("button", name="Review the change").click()
    # It waits for review, so the check step asks why; sent without a reason it asks again.
    page.get_by_label("Why is more needed?").fill("   ")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator("#justification-error")).to_contain_text("Say why more is needed")
    page.get_by_label("Why is more needed?").fill("The spring intake doubles the traffic.")
    page.get_by_role("button", name="Submit for review").click()
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    increase_id = int(page.url.rsplit("/", 1)[1])
    assert increase_id != edit_id
    expect(page.locator("#request-summary .badge")).to_have_text("Pending approval")

    reviewer = queue_page(browser, live_server, admin)
    item = reviewer.locator(f"#queue-request-{increase_id}")
    expect(item.locator(".tag.kind-edit")).to_have_text("Change")
    expect(item.locator("table.diff")).to_contain_text("prod CPU")
    expect(item.locator("table.diff")).to_contain_text("2 cores, limit 4")
    screenshot(reviewer, "queue-change")
    item.get_by_role("button", name="Approve", exact=True).click()
    expect(item).to_have_count(0)
    reviewer.context.close()
    expect(page.locator("#request-summary .badge")).to_have_text("Applied", timeout=WAIT)
    page.goto(f"{live_server}/products/{plate}")
    expect(page.locator("table.quotas")).to_contain_text("2 cores, limit 4")

    # Deletion: the plate typed to confirm, a super admin decides, the product stays, read-only.
    page.get_by_role("link", name="Request deletion").click()
    page.get_by_label("Why delete it?").fill("The otter survey has ended.")
    page.get_by_label("Type the licence plate").fill("nope")
    page.get_by_role("button", name="Request deletion").click()
    expect(page.locator("#confirmation-error")).to_contain_text(f"Type the licence plate {plate}")
    page.get_by_label("Type the licence plate").fill(plate)
    page.get_by_role("button", name="Request deletion").click()
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    delete_id = int(page.url.rsplit("/", 1)[1])
    reviewer = queue_page(browser, live_server, admin)
    item = reviewer.locator(f"#queue-request-{delete_id}")
    expect(item).to_contain_text("Asks to delete the product")
    expect(item).to_contain_text("Why delete it: “The otter survey has ended.”")
    item.get_by_role("button", name="Approve", exact=True).click()
    expect(item).to_have_count(0)
    reviewer.context.close()
    expect(page.locator("#request-summary .badge")).to_have_text("Deleted", timeout=WAIT)
    page.goto(f"{live_server}/products/{plate}")
    expect(page.locator(".page-head .badge")).to_have_text("Deleted")
    expect(page.locator(".product-state")).to_contain_text("read-only")
    expect(page.get_by_role("link", name="Request a change")).to_have_count(0)
    expect(page.get_by_role("link", name="Request deletion")).to_have_count(0)
    expect(page.locator("#product-requests tbody tr")).to_have_count(4)
    screenshot(page, "product-deleted")
    assert files_on_main(gitops, f"silver/{plate}") == []


def test_request_again_after_a_rejection_and_a_double_click_makes_one_product(
    page: Page, live_server, owner, admin, screenshot
):
    req = builders.submit(owner, name="Fish ladders")
    services.decide(req.id, admin, approve=False, comment="Name the ministry that pays.")
    db.session.commit()
    plate = req.product.licence_plate

    sign_in(page, live_server, owner)
    page.goto(f"{live_server}/products/{plate}")
    expect(page.locator(".page-head .badge")).to_have_text("Not created")
    page.get_by_role("link", name="Request again").click()
    expect(page.get_by_label("Product name")).to_have_value("Fish ladders")
    expect(page.get_by_label("Why the last request was rejected")).to_contain_text(
        "Name the ministry that pays."
    )
    screenshot(page, "request-again")
    page.get_by_label("Ministry").select_option("FLNR")
    page.get_by_role("button", name="Submit for review").dblclick()
    expect(page.get_by_role("heading", name="Check your request")).to_be_visible()
    expect(page.locator("#review-product")).to_contain_text("FLNR - Forests")
    page.get_by_role("button", name="Send the request").click()
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    expect(page.locator("h1")).to_contain_text(plate)

    # A double click on a new product's submit button makes one product, not two.
    page.goto(f"{live_server}/products/new")
    page.get_by_label("Product name").fill("Double click")
    page.get_by_label("Description").fill("Clicked twice.")
    page.get_by_label("Ministry").select_option("ENV")
    fill_contact(page, "Product owner", "Pat", "Owner", "pat.owner@example.com")
    fill_contact(page, "Primary technical lead", "Tam", "Lead", "tam.lead@example.com")
    page.get_by_role("button", name="Submit for review").click()
    page.get_by_role("button", name="Send the request").dblclick()
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    page.wait_for_load_state("networkidle")

    db.session.expire_all()
    names = list(db.session.scalars(select(Product.name).order_by(Product.id)))
    assert names == ["Fish ladders", "Double click"]
    again = db.session.scalars(
        select(Request).where(Request.product_id == req.product_id).order_by(Request.id)
    ).all()
    assert [(r.type, r.status) for r in again] == [("create", "rejected"), ("create", "pending")]
    assert db.session.scalar(select(func.count()).select_from(Request)) == 3
