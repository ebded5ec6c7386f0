"""Every page, as every role that may see it, at 390 px and 1,280 px: no sideways scroll and no
axe-core violations (WCAG 2.1 A and AA, and axe's best practices).

The pages come from ``app.url_map`` through the access matrix (``tests/app/test_access.py``: a route
without a row fails there), so a new page is checked here the day it is added: each GET route is
visited as each role whose row says 200, in three states: an empty registry, one with data (the
matrix's world plus a lived-in week, a live product, a change waiting with other quotas, a dead
letter), and forms with their errors; then the error pages (403, 404, 409, 500). Routes that answer
something other than a page are listed in ``NOT_PAGES``, and the test fails if one of them
starts answering HTML or a page stops.

One browser context per role (signed in once), each page at both widths.
"""

import json
from datetime import timedelta
from types import SimpleNamespace

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect
from sqlalchemy import select

from registry import contract
from registry.api.spec import ENDPOINTS as API_ENDPOINTS
from registry.auth import service_accounts as machine_accounts
from registry.auth.models import Role
from registry.capacity.models import SavingOffer
from registry.extensions import db
from registry.outbox.models import EmailStatus, OutboxEmail
from registry.products.services import ContactData, ProductData, live_data
from registry.provisioning import dead_letters as dead_letter_rules
from registry.requests import services, temporary
from registry.requests.models import Request, TemporaryIncrease
from tests import builders
from tests.app.test_access import ROUTES, World
from tests.operations import ops_scenario

pytestmark = pytest.mark.browser

WIDTHS = (390, 1280)
# A role each: the requester is a product team member who made the world's request.
ROLES = ("anonymous", "requester", "support", "super_admin")
# GET routes that answer something else than a page (JSON, CSV, a redirect).
NOT_PAGES = {
    "health.healthz",
    "health.readyz",
    "metrics.metrics",  # Prometheus' text format
    "audit.export",
    "finding.export",  # CSV
    "capacity.cost_report_csv",
    "api.openapi_document",  # JSON
    # /api/v1's reads: JSON, and 401 to a browser's session (a token is needed).
    *(f"api.{e.name}" for e in API_ENDPOINTS if e.method == "GET"),
    "favicon",
    "index",  # a redirect to each role's own page
    "auth.oidc_start",  # 404 with single sign-on off (tests/auth/test_oidc.py)
    "auth.oidc_callback",
}
# An email's HTML as sent (shown in the mailbox's frame) is a message, not a page of the registry:
# the rules about a page's title, landmarks and first heading do not apply to it.
NOT_A_PAGE_RULES = {
    "notifications.mailbox_html": (
        "document-title",
        "landmark-one-main",
        "page-has-heading-one",
        "region",
    ),
    # Swagger UI's own markup (vendored, registry/static/VENDORED.md) breaks these; the API's
    # accessible reference is /api/v1/docs, checked in full: the interactive one is a tool.
    "api.try_page": (
        "color-contrast",
        "heading-order",
        "landmark-main-is-top-level",
        "landmark-no-duplicate-main",
        "landmark-unique",
        "nested-interactive",
        "select-name",
    ),
}
BOOM = "/_layout-test/boom"  # a route of this test only, to see the 500 page
SECRET = "the-database-password-is-hunter2"

axe = Axe()


def page_routes(app) -> list[str]:
    """The endpoints of every GET route but the static files."""
    return sorted(
        {
            rule.endpoint
            for rule in app.url_map.iter_rules()
            if "GET" in rule.methods and rule.endpoint not in ("static", "layout_boom")
        }
    )


EXPECTED = {r.endpoint: r.expected for r in ROUTES if r.method == "GET"}


def problems_on(page: Page, width: int, rules_off=()) -> list[str]:
    """What is wrong with the page as shown: sideways scroll, axe violations.

    Looked at once HTMX has no request in flight: while one is (an inline validation after a
    failed submit, say), its form's button is dimmed on purpose, and axe measured that."""
    page.wait_for_function("() => !document.querySelector('.htmx-request')")
    found = []
    scroll = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if scroll[0] > scroll[1]:
        wide = page.evaluate(
            """() => [...document.querySelectorAll('body *')]
                .filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5)
                .slice(0, 5)
                .map(e => `${e.tagName.toLowerCase()}.${e.className} ${
                    Math.round(e.getBoundingClientRect().right)}`)"""
        )
        found.append(f"scrolls sideways: {scroll[0]} > {scroll[1]} ({wide})")
    options = {"resultTypes": ["violations"]}
    if rules_off:
        options["rules"] = {rule: {"enabled": False} for rule in rules_off}
    results = page.evaluate("options => axe.run(document, options)", options)
    for violation in results["violations"]:
        targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
        found.append(f"axe {violation['id']}: {violation['help']} at {targets}")
    return found


class Visitor:
    """One signed-in browser context per role; checks each page at every width."""

    def __init__(self, browser, live_server: str, world: World):
        self.browser = browser
        self.live_server = live_server
        self.world = world
        self.pages: dict[str, Page] = {}
        self.problems: list[str] = []
        self.checked = 0

    def page(self, role: str) -> Page:
        if role not in self.pages:
            context = self.browser.new_context(viewport={"width": WIDTHS[-1], "height": 900})
            # axe-core in every document this context loads (faster than sending it each time).
            context.add_init_script(script=axe.axe_script)
            page = context.new_page()
            page.set_default_timeout(10_000)
            if role != "anonymous":
                page.goto(f"{self.live_server}/login")
                page.get_by_label("Email").fill(self.world.emails[role])
                page.get_by_label("Password").fill("password")
                page.get_by_role("button", name="Sign in").click()
                expect(page.locator(".who")).to_be_attached()
            self.pages[role] = page
        return self.pages[role]

    def check(self, role: str, url: str, label: str, status: int | None = 200) -> str:
        """Load ``url`` as ``role`` at each width; return its content type."""
        page = self.page(role)
        # Asked first without the page (a CSV would start a download), with the role's cookies.
        answer = page.context.request.get(f"{self.live_server}{url}", max_redirects=0)
        kind = answer.headers.get("content-type", "")
        if not kind.startswith("text/html"):
            return kind
        if not answer.text().lstrip().lower().startswith("<!doctype html"):
            return "fragment"  # an HTMX answer, checked in the page it is swapped into
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            response = page.goto(f"{self.live_server}{url}")
            kind = response.headers.get("content-type", "")
            if status is not None and response.status != status:
                self.problems.append(f"{label} as {role}: {response.status}, not {status}")
                return kind
            if not kind.startswith("text/html"):
                return kind
            self.checked += 1
            found = problems_on(page, width, NOT_A_PAGE_RULES.get(label, ()))
            self.problems += [f"{label} as {role} at {width}px: {p}" for p in found]
        return kind

    def check_here(self, role: str, label: str, act) -> None:
        """Check the page ``act(page)`` leaves (a form with its errors) at each width."""
        page = self.page(role)
        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 900})
            act(page)
            self.checked += 1
            self.problems += [
                f"{label} as {role} at {width}px: {p}" for p in problems_on(page, width)
            ]

    def close(self) -> None:
        for page in self.pages.values():
            page.context.close()


def make_people() -> dict:
    """The access matrix's people (the same emails and roles as its ``world`` fixture)."""
    return {
        "unrelated": builders.make_user(email="unrelated@example.com", name="Una Related"),
        "contact": builders.make_user(email="contact@example.com", name="Cora Contact"),
        "requester": builders.make_user(email="requester@example.com", name="Rita Requester"),
        "support": builders.make_user(Role.SUPPORT, email="support@example.com", name="Sue"),
        "super_admin": builders.make_user(Role.SUPER_ADMIN, email="admin@example.com", name="Ada"),
    }


def make_world(people: dict) -> World:
    """The matrix's world (see ``tests/app/test_access.py``), on these people."""
    req = builders.submit(
        people["requester"], owner=ContactData("Cora", "Contact", "contact@example.com")
    )
    failed = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.request_id == req.id).order_by(OutboxEmail.id)
    ).first()
    failed.status = EmailStatus.FAILED.value
    failed.attempts = 8
    failed.last_error = "550 mailbox unavailable: " + "a-very-long-unbroken-error-text-" * 4
    account, _ = machine_accounts.create_service_account("pipeline")
    db.session.commit()
    return World(
        emails={persona: user.email for persona, user in people.items()},
        plate=req.product.licence_plate,
        request_id=req.id,
        failed_email_id=failed.id,
        service_account_id=account.id,
    )


TEAM_AND_STAFF = ("requester", "support", "super_admin")


def lived_in(people: dict) -> list[tuple[str, str, tuple[str, ...]]]:
    """More states than the world has: (endpoint, url, roles) of pages that show them."""
    requester, admin = people["requester"], people["super_admin"]
    scenario = ops_scenario.build(requester, admin)
    ops_scenario.silent_in_flight(requester, admin)
    # A live product with a change asking for more, waiting for review (diff, other quotas).
    live = builders.submit(requester, name="Harbour Permits With A Long Name, Narrow")
    services.decide(live.id, admin, approve=True)
    db.session.commit()
    for step in contract.STEPS:
        ops_scenario.report(live, step)
    product = live.product
    data = ProductData.from_dict(live_data(product))
    data.quotas["prod"]["cpu"] = "cpu-request-1-limit-2"
    data.description = "Permits for harbour moorings, now with a public map."
    edit = services.submit_edit(
        product, data, requester, justification="Two more services go live in March."
    )
    db.session.commit()
    dead_letter_rules.dead_letter(
        "nats",
        json.dumps({"licencePlate": "zzzzzz", "note": "x" * 300}),
        "No request matches this report: " + "unknown-plate-" * 10,
    )
    db.session.commit()
    settled_product = db.session.get(Request, scenario.provisioned[0]).product
    settled = settled_product.licence_plate
    # On it, a temporary increase and a saving on offer (rows as the checks make them).
    going = {"from": "cpu-request-0.5-limit-1.5", "to": "cpu-request-2-limit-4"}
    db.session.add_all([
        TemporaryIncrease(product=settled_product, request_id=scenario.provisioned[0],
                          ends_on=temporary.today() + timedelta(days=20),
                          restore={"namespaces.prod.cpu": going}),
        SavingOffer(product=settled_product, window_days=30, monthly_saving=120.0,
                    proposal={"namespaces.dev.memory": {"from": "memory-request-16-limit-32",
                              "to": "memory-request-4-limit-8", "peak": 2.61, "quota": 16}}),
    ])  # fmt: skip
    db.session.commit()
    rejected = db.session.get(Request, scenario.rejected).product.licence_plate
    return [
        ("requests.detail", f"/requests/{scenario.provisioned[0]}", TEAM_AND_STAFF),
        ("requests.detail", f"/requests/{scenario.failed}", TEAM_AND_STAFF),
        ("requests.detail", f"/requests/{scenario.rejected}", TEAM_AND_STAFF),
        ("requests.detail", f"/requests/{edit.id}", TEAM_AND_STAFF),
        ("products.detail", f"/products/{product.licence_plate}", TEAM_AND_STAFF),
        ("products.detail", f"/products/{rejected}", ("requester",)),
        ("products.detail", f"/products/{settled}", TEAM_AND_STAFF),
        ("capacity.cost_report", "/reports/cost", ("support", "super_admin")),
        ("asking.change", f"/products/{settled}/change", ("requester",)),
        ("asking.delete", f"/products/{settled}/delete", ("requester",)),
        ("asking.request_again", f"/products/{rejected}/request-again", ("requester",)),
        ("review.grant", f"/admin/requests/{edit.id}/grant", ("super_admin",)),
        ("review.whole_request", f"/admin/requests/{edit.id}/whole", ("super_admin",)),
        ("finding.all_requests", "/history?status=provisioned&q=Provisioned", ("support",)),
    ]


fragments: set[str] = set()  # GET routes that answer a part of a page (HTMX)


def visit_every_page(visitor: Visitor, app, world: World | None) -> set[str]:
    """Each GET route as each role its matrix row lets in (200); with no world, only the routes
    that need no licence plate or request. Returns the endpoints seen as pages."""
    seen = set()
    for endpoint in page_routes(app):
        assert endpoint in EXPECTED, f"{endpoint} has no GET row in tests/app/test_access.py ROUTES"
        [rule] = app.url_map.iter_rules(endpoint)
        if world is None and rule.arguments:
            continue
        for role in ROLES:
            if EXPECTED[endpoint][role] != 200:
                continue
            if world is None:
                url = app.url_map.bind("localhost").build(endpoint, {})
            else:
                url = world.url(app, endpoint)
            kind = visitor.check(role, url, endpoint)
            is_page = kind.startswith("text/html")
            if kind == "fragment":
                fragments.add(endpoint)
                continue
            assert is_page != (endpoint in NOT_PAGES), f"{endpoint} answers {kind}"
            if is_page:
                seen.add(endpoint)
    return seen


def test_every_page_fits_narrow_and_wide_screens_and_has_no_axe_violations(
    app, browser, live_server
):
    app.config.update(SUPPORT_EMAIL="platform-support@example.com", PROPAGATE_EXCEPTIONS=False)

    def boom():
        raise RuntimeError(SECRET)

    app.add_url_rule(BOOM, "layout_boom", boom)
    people = make_people()
    # The world is made after the empty registry is seen; its emails are the people's.
    visitor = Visitor(
        browser,
        live_server,
        SimpleNamespace(emails={k: u.email for k, u in people.items()}),
    )
    try:
        # An empty registry: every page that needs no product or request.
        visit_every_page(visitor, app, None)

        # With data: every page, and the states the world has not.
        world = make_world(people)
        extra = lived_in(people)
        visitor.world = world
        seen = visit_every_page(visitor, app, world)
        for endpoint, url, roles in extra:
            for role in roles:
                visitor.check(role, url, endpoint)
            seen.add(endpoint)
        assert seen == {e for e in page_routes(app) if e not in NOT_PAGES | fragments}

        # Forms with their errors.
        def empty_product_form(page: Page) -> None:
            page.goto(f"{live_server}/products/new")
            page.get_by_role("button", name="Submit for review").click()
            expect(page.get_by_role("alert")).to_be_visible()

        visitor.check_here("requester", "new product form with errors", empty_product_form)

        def wrong_password(page: Page) -> None:
            page.goto(f"{live_server}/login")
            page.get_by_label("Email").fill("nobody@example.com")
            page.get_by_label("Password").fill("wrong")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_text("Email or password is not right.")).to_be_visible()

        visitor.check_here("anonymous", "sign-in with an error", wrong_password)

        # The error pages, in the registry's words; the 500 page tells nothing of the cause.
        visitor.check("requester", "/admin/queue", "403 page", 403)
        visitor.check("requester", "/products/zzzzzz", "404 page", 404)
        visitor.check("requester", world.url(app, "asking.change"), "409 page", 409)
        visitor.check("anonymous", "/no/such/page", "404 page signed out", 404)
        visitor.check("requester", BOOM, "500 page", 500)
        body = visitor.page("requester").content()
        assert "Something went wrong on our side" in body
        assert SECRET not in body
        assert "RuntimeError" not in body
    finally:
        visitor.close()

    assert not visitor.problems, "\n".join(visitor.problems)
    assert visitor.checked > 60


def test_the_nav_folds_on_narrow_screens_and_fits_one_line_at_1280(browser, live_server, admin):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(f"{live_server}/login")
        page.get_by_label("Email").fill(admin.email)
        page.get_by_label("Password").fill("password")
        page.get_by_role("button", name="Sign in").click()
        # The skip link is the first thing a keyboard reaches, and it moves focus to main.
        expect(page.locator(".who")).to_be_visible()
        page.keyboard.press("Tab")
        skip = page.get_by_role("link", name="Skip to main content")
        expect(skip).to_be_focused()
        page.keyboard.press("Enter")
        expect(page.locator("main")).to_be_focused()
        nav = page.get_by_role("navigation", name="Main")
        expect(nav).to_be_visible()
        toggle = page.get_by_role("button", name="Menu")
        expect(toggle).to_be_hidden()
        tops = nav.get_by_role("link").evaluate_all(
            "links => links.map(a => Math.round(a.getBoundingClientRect().top))"
        )
        assert len(tops) >= 9
        assert len(set(tops)) == 1, f"the admin nav wraps at 1280 px: {tops}"

        page.set_viewport_size({"width": 320, "height": 700})
        expect(toggle).to_be_visible()
        expect(toggle).to_have_attribute("aria-expanded", "false")
        expect(nav).to_be_hidden()
        toggle.click()
        expect(toggle).to_have_attribute("aria-expanded", "true")
        expect(nav).to_be_visible()
        nav.get_by_role("link", name="All requests").click()
        expect(page.get_by_role("heading", name="All requests")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()

    # Without JavaScript there is no button to press: the menu is simply open.
    context = browser.new_context(java_script_enabled=False, viewport={"width": 320, "height": 700})
    page = context.new_page()
    page.set_default_timeout(10_000)
    try:
        page.goto(f"{live_server}/login")
        page.get_by_label("Email").fill(admin.email)
        page.get_by_label("Password").fill("password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("navigation", name="Main")).to_be_visible()
        expect(page.get_by_role("button", name="Menu")).to_be_hidden()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
