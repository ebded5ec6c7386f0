"""The development mailbox: super admins read every email, everyone else only theirs."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from registry.extensions import db
from registry.outbox.models import OutboxEmail
from registry.products.services import ContactData
from tests import builders


def mailbox_ids(client) -> set[int]:
    response = client.get("/dev/mailbox")
    assert response.status_code == 200
    return {
        int(i) for i in re.findall(r'href="/dev/mailbox/(\d+)"', response.get_data(as_text=True))
    }


def emails_to(address: str) -> set[int]:
    ids = {e.id for e in db.session.scalars(select(OutboxEmail)) if address in e.recipients}
    db.session.rollback()
    return ids


def test_the_mailbox_shows_a_team_member_only_their_mail(client, owner, admin):
    lead = builders.make_user(email="lead_1@example.com", name="Lee Lead")
    builders.submit(owner, primary_lead=ContactData("Lee", "Lead", lead.email))
    builders.submit(owner)  # the lead is no contact of this one
    everything = {e.id for e in db.session.scalars(select(OutboxEmail))}
    db.session.rollback()
    mine = emails_to(lead.email)
    # The lead is told of their request; the reviewers' and the other product's mail is not theirs.
    assert mine and mine < everything
    assert not mine & emails_to(admin.email)

    builders.login(client, lead)
    assert mailbox_ids(client) == mine
    for email_id in everything - mine:
        assert client.get(f"/dev/mailbox/{email_id}").status_code == 404
        assert client.get(f"/dev/mailbox/{email_id}/html").status_code == 404
    for email_id in mine:
        assert client.get(f"/dev/mailbox/{email_id}").status_code == 200
        assert client.get(f"/dev/mailbox/{email_id}/html").status_code == 200


def test_a_super_admin_reads_every_email(client, owner, admin):
    builders.submit(owner)
    everything = {e.id for e in db.session.scalars(select(OutboxEmail))}
    db.session.rollback()
    builders.login(client, admin)
    assert mailbox_ids(client) == everything
    for email_id in everything:
        assert client.get(f"/dev/mailbox/{email_id}/html").status_code == 200


def test_an_address_is_matched_whole_not_as_a_part(client, owner):
    # "a_b@example.com" must not see mail to "xa_b@example.com", nor "a%b" wildcards match.
    builders.submit(owner, owner=ContactData("X", "Y", "xa_b@example.com"))
    user = builders.make_user(email="a_b@example.com")
    builders.login(client, user)
    assert mailbox_ids(client) == set()


@pytest.mark.browser
def test_a_link_in_an_email_opens_the_registry_in_a_new_tab(app, live_server, page, owner):
    """The HTML body is framed, and the registry refuses to be framed: its links open a tab."""
    from tests.browser.test_browser import sign_in

    app.config["PUBLIC_URL"] = live_server
    req = builders.submit(owner)
    db.session.commit()
    email_id = db.session.scalar(
        select(OutboxEmail.id).where(
            OutboxEmail.request_id == req.id, OutboxEmail.kind == "received"
        )
    )
    sign_in(page, live_server, owner)
    page.goto(f"{live_server}/dev/mailbox/{email_id}")
    link = page.frame_locator("iframe.mail-html").get_by_role(
        "link", name=f"Open request #{req.id} in the Product Registry"
    )
    with page.context.expect_page() as opened:
        link.click()
    tab = opened.value
    tab.wait_for_load_state()
    assert tab.url == f"{live_server}/requests/{req.id}"
    expect(tab.locator("h1")).to_contain_text(req.product.name)
    # The text body's addresses are links too.
    expect(page.locator("pre.mail-text a").first).to_have_attribute(
        "href", f"{live_server}/requests/{req.id}"
    )
