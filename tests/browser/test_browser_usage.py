"""Usage in the browser, against a real Prometheus: the product page's gauges, the change
form's cost and its question, and the review card's figures and headroom, at 1,280 and 390 px."""

import re
from datetime import timedelta

from playwright.sync_api import expect

from tests.browser.test_browser import sign_in
from tests.browser.test_browser_day_two import queue_page
from tests.requests.test_day_two import live_product
from tests.usage.test_usage import MORE_CPU, busy


def test_usage_gauges_cost_and_headroom_in_the_browser(
    live_server, page, browser, prometheus, owner, admin, screenshot
):
    product = live_product(owner, admin)
    plate = product.licence_plate
    prometheus(busy(plate))
    sign_in(page, live_server, owner)

    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server}/products/{plate}")
        usage = page.locator("#usage")
        expect(usage.locator("svg.gauge")).to_have_count(6)  # prod and dev: CPU, memory, storage
        prod_cpu = usage.locator("tr", has_text=f"{plate}-prod").filter(has_text="CPU")
        expect(prod_cpu.locator("svg.gauge")).to_have_attribute(
            "aria-label", re.compile(r"^(7[6-9]|8[0-4])% on average")
        )
        expect(prod_cpu.locator("svg.gauge")).to_be_visible()
        expect(page.locator("#monthly-cost")).to_contain_text("a month")
        # Nothing wider than the screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        screenshot(page, f"usage-{width}")

    # The change form: the cost of the change as it is chosen, and the question only when asked.
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server}/products/{plate}/change")
    page.get_by_label("dev cpu").select_option(MORE_CPU)
    expect(page.locator("#change-cost")).to_contain_text("with this change")
    expect(page.locator("#change-summary")).to_contain_text("dev CPU: 0.02 cores used on average")
    page.get_by_role("button", name="Review the change").click()
    page.get_by_label("Why is more needed?").fill("The spring intake doubles the traffic.")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator("#request-summary .badge")).to_have_text("Pending approval")

    reviewer = queue_page(browser, live_server, admin)
    card = reviewer.locator(".queue-item").first
    expect(card).to_contain_text("Why more is needed: “The spring intake doubles the traffic.”")
    expect(card.locator(".usage-checks")).to_contain_text("under 35%")
    expect(card.locator(".headroom")).to_contain_text("46.0 of 48.0 cores")
    screenshot(reviewer, "usage-review-card")
    reviewer.context.close()


def test_a_temporary_increase_and_a_saving_in_the_browser(
    live_server, page, browser, prometheus, owner, admin, screenshot
):
    """The end day typed on the change form (390 px, keyboard), carried through the check step
    to the review card; then a saving on offer applied from the product page."""
    from registry.capacity import savings
    from registry.requests import temporary
    from tests.capacity.test_savings import idle, oversized

    product = oversized(owner, admin)
    plate = product.licence_plate
    prometheus(idle(plate))
    until = (temporary.today() + timedelta(days=21)).isoformat()
    sign_in(page, live_server, owner)

    page.set_viewport_size({"width": 390, "height": 900})
    page.goto(f"{live_server}/products/{plate}/change")
    page.get_by_label("dev cpu").select_option(MORE_CPU)
    page.get_by_label("Quotas go back on").fill(until)
    page.get_by_label("Quotas go back on").press("Tab")
    expect(page.locator("#change-summary")).to_contain_text("Temporary: the quotas raised go back")
    page.get_by_role("button", name="Review the change").focus()
    page.keyboard.press("Enter")
    page.get_by_label("Why is more needed?").fill("A load test of the spring release.")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "temporary-check-390")
    page.get_by_role("button", name="Submit for review").click()
    expect(page.locator("#request-summary .badge")).to_have_text("Pending approval")
    expect(page.locator("main")).to_contain_text("the quotas raised go back on")

    reviewer = queue_page(browser, live_server, admin)
    card = reviewer.locator(".queue-item").first
    expect(card).to_contain_text("Temporary: the quotas raised go back on")
    reviewer.context.close()

    # Cancel it, then a saving on offer: applied in one click, shown as a change.
    page.locator("summary", has_text="Cancel this request").click()
    page.get_by_role("button", name="Yes, cancel the request").click()
    expect(page.locator("#request-summary .badge")).to_have_text("Cancelled")
    savings.check()
    page.goto(f"{live_server}/products/{plate}")
    offer = page.locator("#saving")
    expect(offer).to_contain_text("A saving on offer: CAD 120.00 a month")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "saving-390")
    offer.get_by_role("button", name="Apply this saving").click()
    expect(page.locator("#request-summary .badge")).to_have_text(re.compile("Approved|Applied"))
