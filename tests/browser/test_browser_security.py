"""Single sign-on in Chromium, through a real OpenID Connect provider process: a super admin
(role from the claim) approves a request; a product team member sees no queue, signs out at the
registry and at the provider, and the cookie they had is worth nothing afterwards."""

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from registry.extensions import db
from registry.requests.models import Request, RequestStatus
from tests import builders
from tests.conftest import OIDC_PEOPLE

pytestmark = pytest.mark.browser


def sso_sign_in(page, live_server: str, person: dict) -> None:
    page.goto(f"{live_server}/login")
    page.get_by_role("link", name="Sign in with your organization's account").click()
    # The provider's own page: pick the person (a real provider asks for a password here).
    page.get_by_role("button", name=person["sub"]).click()
    expect(page.locator(".who")).to_contain_text(person["name"])


def test_sign_in_through_the_provider_decide_and_sign_out(
    oidc_app, live_server, browser, owner, screenshot
):
    oidc_app.config["PUBLIC_URL"] = live_server
    request_id = builders.submit(owner).id
    db.session.commit()

    admin_context = browser.new_context()
    admin = admin_context.new_page()
    admin.set_default_timeout(10_000)
    sso_sign_in(admin, live_server, OIDC_PEOPLE["ada"])
    expect(admin).to_have_url(f"{live_server}/admin/queue")
    item = admin.locator(f"#queue-request-{request_id}")
    item.get_by_role("button", name="Approve").click()
    expect(item).to_have_count(0)
    screenshot(admin, "sso-admin-approved")
    db.session.expire_all()
    assert db.session.get(Request, request_id).status == RequestStatus.APPROVED.value
    admin_context.close()

    team_context = browser.new_context()
    team = team_context.new_page()
    team.set_default_timeout(10_000)
    sso_sign_in(team, live_server, OIDC_PEOPLE["tom"])
    expect(team).to_have_url(f"{live_server}/products")
    expect(team.get_by_role("link", name="Review queue")).to_have_count(0)
    assert team.goto(f"{live_server}/admin/queue").status == 403
    cookies = team_context.cookies()

    team.goto(f"{live_server}/products")
    team.get_by_role("button", name="Sign out").click()
    # The provider ends its session, then sends the browser back to the registry's sign-in.
    team.get_by_role("button", name="End session").click()
    expect(team).to_have_url(f"{live_server}/login")
    team_context.close()

    replay_context = browser.new_context()
    replay_context.add_cookies(cookies)
    replay = replay_context.new_page()
    replay.goto(f"{live_server}/products")
    expect(replay).to_have_url(f"{live_server}/login?next=%2Fproducts")
    expect(replay.get_by_role("heading", name="Sign in")).to_be_visible()
    replay_context.close()
    # Nothing was made by the replayed cookie.
    assert db.session.scalars(select(Request.id)).all() == [request_id]
