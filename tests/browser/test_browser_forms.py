"""The product form says what it does, in a real Chromium: a counter instead of a silent cut, a
cross-field error that follows either field, a warning for a name another product has, picking a
contact from the people the registry knows, the summary before sending; and the whole way from a
new product to its approval with the keyboard alone.

Set REGISTRY_SCREENSHOTS=/some/dir to keep screenshots of the form and its summary.
"""

import re

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select

from registry.auth.models import Role
from registry.extensions import db
from registry.products.models import Product
from registry.products.services import ContactData
from registry.requests import services as request_services
from registry.requests.models import Request, RequestStatus
from tests import builders
from tests.browser.test_browser import PASSWORD, fill_contact, sign_in

pytestmark = pytest.mark.browser

NAME_45 = "A" + "b" * 44


def test_a_long_name_is_counted_not_cut_and_the_server_keeps_it(
    page: Page, live_server, owner, stranger, screenshot
):
    builders.submit(stranger, name="Fish Ladders")
    sign_in(page, live_server, owner)
    page.goto(f"{live_server}/products/new")
    name = page.get_by_label("Product name")
    counter = page.locator("#name-counter")
    expect(counter).to_have_text("0 of 40 characters")

    name.press_sequentially(NAME_45)

    # Every character typed is in the field: no maxlength cut the last five.
    expect(name).to_have_value(NAME_45)
    expect(counter).to_have_text("45 of 40 characters: 5 too many")
    expect(counter).to_have_class(re.compile(r"\bover\b"))
    # Announced once, when the limit was crossed, not on every keystroke.
    expect(page.locator("#name-counter-live")).to_have_text("Over the limit of 40 characters.")
    screenshot(page, "new-product-counter-over")

    page.get_by_label("Description").fill("Permits for river crossings.")
    page.get_by_label("Ministry").select_option("CITZ")
    fill_contact(page, "Product owner", "Pat", "Owner", "pat.owner@example.com")
    fill_contact(page, "Primary technical lead", "Tam", "Lead", "tam.lead@example.com")
    page.get_by_role("button", name="Submit for review").click()

    # The server refuses it, with its message, and the text as typed.
    expect(page.get_by_role("alert")).to_contain_text("Please correct the fields marked below")
    expect(page.locator("#name-error")).to_have_text("Product name must be 40 characters or fewer.")
    expect(page.get_by_label("Product name")).to_have_value(NAME_45)
    expect(page.locator("#name-counter")).to_have_text("45 of 40 characters: 5 too many")

    # Back under the limit, the counter says so; a name another product has is only a warning.
    name = page.get_by_label("Product name")
    name.fill("fish LADDERS")
    expect(page.locator("#name-counter")).to_have_text("12 of 40 characters")
    expect(page.locator("#name-counter")).not_to_have_class(re.compile(r"\bover\b"))
    name.press("Tab")
    expect(page.locator("#name-warning")).to_have_text(
        "Another product already has this name. You can still use it; a different one avoids "
        "mix-ups."
    )
    expect(page.locator("#name-error")).to_have_text("")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator("#review-name-warning")).to_contain_text("Another product")
    page.get_by_role("button", name="Send the request").click()
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    db.session.expire_all()
    assert sorted(db.session.scalars(select(Product.name))) == ["Fish Ladders", "fish LADDERS"]


def test_the_cross_field_error_goes_when_either_email_changes(page: Page, live_server, owner):
    sign_in(page, live_server, owner)
    page.goto(f"{live_server}/products/new")
    owner_email = page.get_by_role("group", name="Product owner").get_by_label("Email")
    lead_email = page.get_by_role("group", name="Primary technical lead").get_by_label("Email")
    lead_error = page.locator("#primary_lead-email-error")

    owner_email.fill("same@example.com")
    owner_email.press("Tab")
    lead_email.fill("same@example.com")
    lead_email.press("Tab")
    expect(lead_error).to_have_text(
        "The primary technical lead must be a different person from the product owner."
    )

    # The owner's email changes: the lead's message goes, though the lead's field was not touched.
    owner_email.fill("pat.owner@example.com")
    owner_email.press("Tab")
    expect(lead_error).to_have_text("")
    expect(page.locator("#product_owner-email-error")).to_have_text("")

    # And it comes back when the owner's email becomes the lead's again.
    owner_email.fill("SAME@example.com")
    owner_email.press("Tab")
    expect(lead_error).to_have_text(
        "The primary technical lead must be a different person from the product owner."
    )


def test_a_contact_is_picked_from_the_people_the_registry_knows(page: Page, live_server, owner):
    # Someone the owner may know: a contact of one of the owner's products.
    builders.submit(owner, secondary_lead=ContactData("Morgan", "River", "morgan.river@gov.bc.ca"))
    sign_in(page, live_server, owner)
    page.goto(f"{live_server}/products/new")
    fieldset = page.get_by_role("group", name="Product owner")
    search = fieldset.get_by_label("Or find someone the registry knows")
    results = page.locator("#product_owner-people")

    search.press_sequentially("mo")
    expect(results).to_have_text("Type at least 3 characters of a name or email.")
    search.press_sequentially("rg")
    person = results.get_by_role("button", name="Morgan River <morgan.river@gov.bc.ca>")
    expect(person).to_be_visible()
    expect(results.get_by_role("listitem")).to_have_count(1)
    person.click()

    expect(fieldset.get_by_label("First name")).to_have_value("Morgan")
    expect(fieldset.get_by_label("Last name")).to_have_value("River")
    expect(fieldset.get_by_label("Email")).to_have_value("morgan.river@gov.bc.ca")
    expect(results).to_have_text("Filled in Morgan River, morgan.river@gov.bc.ca.")
    expect(fieldset.get_by_label("First name")).to_be_focused()
    # Someone new is still typed by hand.
    fill_contact(page, "Primary technical lead", "New", "Person", "new.person@example.com")
    expect(
        page.get_by_role("group", name="Primary technical lead").get_by_label("Email")
    ).to_have_value("new.person@example.com")


# The keyboard alone: Tab, Shift+Tab, typing, Enter and Space. No click, no fill.

TABS = 120  # more than any page here has stops


def is_focused(locator: Locator) -> bool:
    return locator.evaluate("element => element === document.activeElement")


def tab_to(page: Page, locator: Locator, backwards: bool = False) -> None:
    """Press Tab (or Shift+Tab) until ``locator`` has the focus, as a keyboard user would."""
    expect(locator).to_be_visible()
    for _ in range(TABS):
        if is_focused(locator):
            return
        page.keyboard.press("Shift+Tab" if backwards else "Tab")
    raise AssertionError(f"{locator} never got the focus")


def type_into(page: Page, locator: Locator, text: str) -> None:
    tab_to(page, locator)
    page.keyboard.type(text)


def keyboard_sign_in(page: Page, live_server: str, user) -> None:
    page.goto(f"{live_server}/login")
    type_into(page, page.get_by_label("Email"), user.email)
    type_into(page, page.get_by_label("Password"), PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator(".who")).to_contain_text(user.name)


def test_a_product_is_requested_and_approved_with_the_keyboard_alone(
    browser, page: Page, live_server, owner, screenshot
):
    admin = builders.make_user(Role.SUPER_ADMIN, email="ada@example.com", name="Ada Keys")
    # Tam leads an earlier product of the owner's (decided, so not in the queue): someone the
    # owner may find in the people search.
    earlier = builders.submit(owner, primary_lead=ContactData("Tam", "Lead", "tam.lead@gov.bc.ca"))
    request_services.decide(earlier.id, builders.make_user(Role.SUPER_ADMIN), approve=True)
    db.session.commit()

    keyboard_sign_in(page, live_server, owner)
    new_product = page.get_by_role("navigation", name="Main").get_by_role(
        "link", name="New product"
    )
    tab_to(page, new_product)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Request a new product")).to_be_visible()

    type_into(page, page.get_by_label("Product name"), "Keyboard permitz")
    type_into(page, page.get_by_label("Description"), "Permits, asked for without a mouse.")
    # Back up one field to fix a typo in the name.
    tab_to(page, page.get_by_label("Product name"), backwards=True)
    page.keyboard.press("End")
    page.keyboard.press("Backspace")
    page.keyboard.type("s")
    expect(page.get_by_label("Product name")).to_have_value("Keyboard permits")

    ministry = page.get_by_label("Ministry")
    tab_to(page, ministry)
    page.keyboard.type("CITZ")  # a select's type-ahead
    expect(ministry).to_have_value("CITZ")
    cluster = page.get_by_label("Cluster", exact=True)
    tab_to(page, cluster)
    page.keyboard.press("ArrowDown")  # silver -> gold
    expect(cluster).to_have_value("gold")
    # The cluster help opens with the keyboard too.
    help_summary = page.locator("#cluster-help summary")
    tab_to(page, help_summary)
    page.keyboard.press("Enter")
    expect(page.locator("#cluster-help")).to_have_attribute("open", "")
    expect(page.locator("#cluster-help")).to_contain_text("Gold (DR) in Calgary")

    po = page.get_by_role("group", name="Product owner")
    type_into(page, po.get_by_label("First name"), "Pat")
    type_into(page, po.get_by_label("Last name"), "Owner")
    type_into(page, po.get_by_label("Email"), "pat.owner@example.com")

    # The primary lead is picked from the people search: type, Tab to the result, Enter.
    lead = page.get_by_role("group", name="Primary technical lead")
    type_into(page, lead.get_by_label("Or find someone the registry knows"), "tam")
    person = lead.get_by_role("button", name="Tam Lead <tam.lead@gov.bc.ca>")
    tab_to(page, person)
    page.keyboard.press("Enter")
    expect(lead.get_by_label("Email")).to_have_value("tam.lead@gov.bc.ca")
    expect(lead.get_by_label("First name")).to_be_focused()

    prod_cpu = page.get_by_label("prod cpu")
    tab_to(page, prod_cpu)
    page.keyboard.press("ArrowDown")
    expect(prod_cpu).to_have_value("cpu-request-1-limit-2")

    tab_to(page, page.get_by_role("button", name="Submit for review"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Check your request")).to_be_visible()
    # The summary takes the focus: no Tab from the top of the page.
    expect(page.locator("#review")).to_be_focused()
    summary = page.locator("#review")
    expect(summary).to_contain_text("Keyboard permits")
    expect(summary).to_contain_text("CITZ - Citizens' Services")
    expect(summary).to_contain_text("Gold Hosting Tier (with a disaster-recovery copy on golddr)")
    expect(summary).to_contain_text("Tam Lead <tam.lead@gov.bc.ca>")
    expect(summary.locator("table.quotas").first).to_contain_text("1 core, limit 2")
    screenshot(page, "keyboard-summary")
    # Back to the form and forward again: focus follows each step, nothing typed is lost.
    tab_to(page, page.get_by_role("button", name="Back to the form"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Back to the form: nothing is sent yet.")).to_be_focused()
    expect(page.get_by_label("Product name")).to_have_value("Keyboard permits")
    tab_to(page, page.get_by_role("button", name="Submit for review"))
    page.keyboard.press("Enter")
    expect(page.locator("#review")).to_be_focused()
    tab_to(page, page.get_by_role("button", name="Send the request"))
    page.keyboard.press("Space")
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    request_id = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#request-summary .badge")).to_have_text("Pending approval")

    # A super admin approves it from the queue, with the keyboard too.
    context = browser.new_context()
    try:
        reviewer = context.new_page()
        reviewer.set_default_timeout(10_000)
        keyboard_sign_in(reviewer, live_server, admin)
        expect(reviewer).to_have_url(re.compile(r"/admin/queue$"))
        item = reviewer.locator(f"#queue-request-{request_id}")
        approve = item.get_by_role("button", name="Approve", exact=True)
        tab_to(reviewer, approve)
        reviewer.keyboard.press("Enter")
        expect(item).to_have_count(0)
        expect(reviewer.locator("#queue-notice")).to_contain_text("Approved Keyboard permits")
    finally:
        context.close()

    db.session.expire_all()
    req = db.session.get(Request, request_id)
    assert req.status == RequestStatus.APPROVED
    assert req.decided_by.email == "ada@example.com"
    assert req.requested_data["cluster"] == "gold"
    assert req.requested_data["contacts"]["primary_lead"] == {
        "first_name": "Tam",
        "last_name": "Lead",
        "email": "tam.lead@gov.bc.ca",
    }
    assert req.requested_data["namespaces"]["prod"]["cpu"] == "cpu-request-1-limit-2"
