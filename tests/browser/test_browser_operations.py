"""The operations page in a real Chromium: the charts are SVG images with the scenario's
numbers, their tables open, a stuck request offers its re-send and its runbook section.

REGISTRY_SCREENSHOTS=/some/dir keeps operations-page.png (docs/operations-page.png is one).
"""

import pytest
from playwright.sync_api import expect

from registry.operations.queries import week_label, week_start
from registry.timeutil import utcnow
from tests.browser.test_browser import sign_in
from tests.operations import ops_scenario

pytestmark = pytest.mark.browser


def test_the_operations_page_draws_the_scenario(
    page, live_server, owner, admin, support, screenshot
):
    now = utcnow()
    ops_scenario.build(owner, admin, now)
    ops_scenario.history(owner, admin, now)
    quiet = ops_scenario.silent_in_flight(owner, admin)
    last_week = week_label(week_start(now) - ops_scenario.timedelta(weeks=1))

    sign_in(page, live_server, admin)
    page.get_by_role("link", name="Operations").click()
    expect(page.get_by_role("heading", name="Operations", level=1)).to_be_visible()

    outcomes = page.get_by_role("img", name="Requests per week by outcome")
    expect(outcomes).to_be_visible()
    assert outcomes.evaluate("e => e.tagName") == "svg"
    # Last week's stacked bar: 3 provisioned, 1 rejected, 1 failed, 5 in all.
    titles = outcomes.locator("rect title").all_text_contents()
    assert f"{last_week}: 3 provisioned" in titles
    assert f"{last_week}: 1 rejected" in titles
    assert f"{last_week}: 1 failed" in titles
    assert "5" in outcomes.locator("text.value-label").all_text_contents()

    decision = page.get_by_role("img", name="Time to a decision")
    assert f"{last_week}, Median: 3.0 h" in decision.locator("circle title").all_text_contents()
    queue = page.get_by_role("img", name="Today's queue by age")
    assert queue.locator("text.value-label").all_text_contents() == ["1", "0", "0", "1"]
    failures = page.get_by_role("img", name="Failures by step")
    assert "Manifests committed to GitOps: 1" in failures.locator("rect title").all_text_contents()

    # The numbers, as a table, for anyone who cannot see the chart.
    figure = page.locator("#chart-outcomes-figure")
    figure.get_by_text("The numbers").click()
    row = figure.get_by_role("row", name=last_week)
    expect(row).to_contain_text("3")
    expect(row.get_by_role("cell").nth(0)).to_have_text("3")

    # The stuck requests: the old pending one and the quiet pipeline, each with what to do.
    stuck = page.locator("table.stuck")
    expect(stuck).to_contain_text("Waiting for a decision for 3 days.")
    quiet_row = page.locator(f"#stuck-{quiet.id}")
    expect(quiet_row).to_contain_text(
        "No report from the provisioner for 42 minutes after manifests_committed on silver."
    )
    expect(quiet_row.get_by_role("button", name="Re-send to the provisioner")).to_be_visible()
    page.locator("#chart-outcomes-figure details").evaluate("d => d.open = false")
    screenshot(page, "operations-page")

    quiet_row.get_by_role("link", name="Runbook").click()
    expect(page.locator("#no-report-from-the-provisioner h3")).to_have_text(
        "No report from the provisioner"
    )


def test_support_reads_the_page_without_the_buttons(page, live_server, owner, admin, support):
    ops_scenario.silent_in_flight(owner, admin)
    sign_in(page, live_server, support)
    page.goto(f"{live_server}/operations")
    expect(page.locator("table.stuck")).to_contain_text("No report from the provisioner")
    expect(page.get_by_role("button", name="Re-send to the provisioner")).to_have_count(0)
    expect(page.get_by_role("link", name="Check the dead letters")).to_be_visible()
