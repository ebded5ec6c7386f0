"""Several admins at once: an open queue learns, within a poll, which of its items another admin
decided, and says who did what and when; a decision that loses the race names the winner's."""

import pytest
from playwright.sync_api import expect

from registry.extensions import db
from registry.requests import services
from tests import builders


def test_an_open_queue_is_told_what_another_admin_decided(client, owner, admin, other_admin):
    first = builders.submit(owner)
    second = builders.submit(owner)
    db.session.commit()
    builders.login(client, admin)
    page = client.get("/admin/queue").get_data(as_text=True)
    # The poller asks about the items still on the page: each carries its id.
    assert '/admin/queue/updates?count=2" hx-include="#queue .queue-item > input[name=ids]"' in page
    for req in (first, second):
        assert f'<input type="hidden" name="ids" value="{req.id}">' in page

    ids = f"ids={first.id}&ids={second.id}"  # as HTMX sends them
    assert client.get(f"/admin/queue/updates?{ids}&count=2").status_code == 204

    services.decide(first.id, other_admin, approve=True)
    db.session.commit()

    response = client.get(f"/admin/queue/updates?{ids}&count=2")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert f'id="queue-request-{first.id}" hx-swap-oob="true"' in body
    assert "Sam Second approved this request just now." in body
    assert f'id="queue-request-{second.id}"' not in body
    assert "1 pending" in body
    # The marked item has no id left to send, and the poller comes back with the new count, so
    # the next poll is quiet.
    assert '/admin/queue/updates?count=1"' in body
    assert client.get(f"/admin/queue/updates?ids={second.id}&count=1").status_code == 204


def test_a_request_decided_elsewhere_says_who_decided_and_where_it_is_now(
    client, owner, admin, other_admin
):
    req = builders.submit(owner)
    services.decide(req.id, other_admin, approve=True)
    req.status = "provisioned"  # the provisioner was quick
    db.session.commit()
    builders.login(client, admin)
    body = client.get(f"/admin/queue/updates?ids={req.id}&count=1").get_data(as_text=True)
    assert "Approved by Sam Second (now provisioned)" in body
    assert "Provisioned by" not in body


def test_a_cancelled_request_is_marked_as_cancelled(client, owner, admin):
    req = builders.submit(owner)
    db.session.commit()
    services.cancel(req.id, owner)
    db.session.commit()
    builders.login(client, admin)
    body = client.get(f"/admin/queue/updates?ids={req.id}&count=1").get_data(as_text=True)
    assert "cancelled by its requester" in body


def test_the_losing_decision_names_the_winning_one(client, owner, admin, other_admin):
    req = builders.submit(owner)
    db.session.commit()
    services.decide(req.id, other_admin, approve=False, comment="Not this quarter.")
    db.session.commit()
    builders.login(client, admin)
    response = builders.post(
        client, f"/admin/requests/{req.id}/decision", {"decision": "approve"}, htmx=True
    )
    assert response.status_code == 409
    assert "Sam Second rejected this request just now." in response.get_data(as_text=True)


@pytest.mark.browser
def test_two_admins_in_two_browsers(app, live_server, browser, owner, admin, other_admin):
    from tests.browser.test_browser import sign_in

    app.config["QUEUE_POLL_SECONDS"] = 1
    first = builders.submit(owner)
    second = builders.submit(owner)
    db.session.commit()
    pages = []
    for who in (admin, other_admin):
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.set_default_timeout(10_000)
        sign_in(page, live_server, who)
        page.goto(f"{live_server}/admin/queue")
        pages.append(page)
    ada, sam = pages

    # Without a reason a rejection is refused: focus goes to the message, not the page's top.
    sam.locator(f"#queue-request-{first.id}").get_by_role("button", name="Reject").click()
    error = sam.locator(f"#queue-request-{first.id} [role=alert]")
    expect(error).to_be_focused()
    sam.locator(f"#queue-request-{first.id}").get_by_role("button", name="Approve").click()
    expect(sam.locator(f"#queue-request-{first.id}")).to_have_count(0)
    # The item left with the button that was pressed: focus is on what happened.
    expect(sam.locator("#queue-notice [role=status]")).to_be_focused()
    expect(sam.locator("#queue-notice [role=status]")).to_contain_text("Approved")
    # Polls later, his own decision is still his: no "decided by someone else" about it.
    with sam.expect_response(lambda r: "/admin/queue/updates" in r.url):
        pass
    with sam.expect_response(lambda r: "/admin/queue/updates" in r.url) as polled:
        pass
    assert f"ids={first.id}" not in polled.value.url
    assert f"ids={second.id}" in polled.value.url
    expect(sam.locator("#queue-notice")).to_contain_text("Approved")
    expect(sam.locator("#queue-notice")).not_to_contain_text("someone else")

    # Ada's queue, untouched, learns of it without a reload: the item says who, and has no buttons.
    item = ada.locator(f"#queue-request-{first.id}")
    expect(item).to_contain_text("Sam Second approved this request", timeout=5_000)
    expect(item.get_by_role("button", name="Approve")).to_have_count(0)
    expect(ada.locator("#queue-count")).to_have_text("1 pending")
    # The polling never takes her focus.
    expect(item.locator("[role=status]")).not_to_be_focused()
    # The other item is still hers to decide.
    ada.locator(f"#queue-request-{second.id}").get_by_role("button", name="Approve").click()
    expect(ada.locator(f"#queue-request-{second.id}")).to_have_count(0)
    for page in pages:
        page.context.close()


@pytest.mark.browser
def test_a_refused_grant_keeps_the_chosen_quotas_and_grants_those(
    app, live_server, browser, owner, admin
):
    """Approve with other quotas, without a reason, is refused: the form comes back open with
    what the admin chose, so the next press grants that, not what was asked."""
    from registry.requests.models import Request
    from tests.browser.test_browser import sign_in
    from tests.requests.test_day_two import BIGGER_CPU, changed, live_product

    product = live_product(owner, admin)
    asked = changed(product, quotas={"prod": {"cpu": "cpu-request-4-limit-8"}})
    edit = services.submit_edit(
        product, asked, owner, justification="Two more services go live in March."
    )
    db.session.commit()
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(10_000)
    sign_in(page, live_server, admin)
    page.goto(f"{live_server}/admin/queue")

    item = page.locator(f"#queue-request-{edit.id}")
    item.get_by_text("Approve with other quotas…").click()
    item.get_by_label("prod cpu to grant").select_option(BIGGER_CPU)
    item.get_by_role("button", name="Approve with these quotas").click()
    error = item.locator(f"#grant-error-{edit.id}")
    expect(error).to_contain_text("Say why the granted quotas differ")
    expect(error).to_be_focused()
    expect(item.locator("details.grant")).to_have_attribute("open", "")
    expect(item.get_by_label("prod cpu to grant")).to_have_value(BIGGER_CPU)
    expect(item.get_by_label("Reason for rejecting (sent to the team)")).to_have_value("")

    item.get_by_label("Why these quotas (sent to the team)").fill("2 cores until load tests.")
    item.get_by_role("button", name="Approve with these quotas").click()
    expect(item).to_have_count(0)
    db.session.expire_all()
    decided = db.session.get(Request, edit.id)
    assert decided.decision_data["namespaces"]["prod"]["cpu"] == BIGGER_CPU
    assert decided.decision_comment == "2 cores until load tests."
    page.context.close()
