"""A timeline that reads right: a re-send says it is one and which attempt, a failure names the
step that broke and is red, and notes name the commit and branch, never a path on a server."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from provisioner.gitops import Repository
from provisioner.workflow import run
from registry.extensions import db
from registry.filters import linkify
from registry.outbox.models import OutboxMessage
from registry.provisioning import reports as status_reports
from registry.requests import services
from registry.requests.models import Request, RequestEvent
from tests import builders
from tests.builders import report


def labels(request_id) -> list[str]:
    events = db.session.scalars(
        select(RequestEvent).where(RequestEvent.request_id == request_id).order_by(RequestEvent.id)
    )
    return [e.to_label for e in events]


@pytest.fixture
def failed(owner, admin):
    """A request whose provisioning broke after the ACS account, then was sent again."""
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    report(req, "workflow_started")
    report(req, "acs_account_created")
    report(req, "failed", "git push refused")
    db.session.commit()
    return req


def test_a_failure_names_the_step_that_broke_and_a_resend_its_attempt(failed, admin):
    assert labels(failed.id)[-1] == "Failed at “Manifests committed to GitOps”"
    [target] = db.session.get(Request, failed.id).targets
    assert target.step_label == "Failed at “Manifests committed to GitOps”"

    status_reports.resend(failed.id, admin)
    db.session.commit()
    status_reports.resend(failed.id, admin)  # stuck again: a third attempt
    db.session.commit()

    assert labels(failed.id) == [
        "Pending approval",
        "Approved",
        "Workflow started",
        "ACS account created",
        "Failed at “Manifests committed to GitOps”",
        "Re-sent (attempt 2)",
        "Re-sent (attempt 3)",
    ]


def test_a_failure_before_any_step_names_the_first(owner, admin):
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    report(req, "failed", "no capacity")
    db.session.commit()
    assert labels(req.id)[-1] == "Failed at “Workflow started”"


def test_the_commit_note_names_commit_and_branch_and_links_where_it_can(tmp_path, owner, admin):
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    message = db.session.scalars(
        select(OutboxMessage.payload).where(OutboxMessage.request_id == req.id)
    ).one()
    workflow = message["workflow"]
    notes: dict = {}
    for web in (None, "https://git.example.gov/platform/gitops/"):
        repo = Repository(tmp_path / f"gitops-{bool(web)}", web_url=web).ensure()
        run(
            message,
            repo,
            lambda step, note, web=web: notes.setdefault(web, {}).update({step: note}),
            [],
        )
    plain, linked = notes[None]["manifests_committed"], notes[web]["manifests_committed"]
    assert re.fullmatch(rf"Commit [0-9a-f]{{10}} on branch {workflow}\.", plain)
    assert str(tmp_path) not in plain and str(tmp_path) not in linked
    sha = re.search(r"/commit/([0-9a-f]{40})$", linked).group(1)
    assert linked.startswith(f"Commit {sha[:10]} on branch {workflow}. ")
    assert linked.endswith(f"https://git.example.gov/platform/gitops/commit/{sha}")


def test_notes_link_their_addresses_and_escape_the_rest():
    html = str(linkify('See https://git.example.gov/c/1a2b. <b>"x"</b> javascript:alert(1)'))
    assert '<a href="https://git.example.gov/c/1a2b" rel="noopener noreferrer">' in html
    assert "</a>. &lt;b&gt;&#34;x&#34;&lt;/b&gt; javascript:alert(1)" in html
    assert str(linkify("no address here")) == "no address here"


@pytest.mark.browser
def test_a_failure_is_red_on_the_page(failed, live_server, page, owner):
    from tests.browser.test_browser import sign_in

    sign_in(page, live_server, owner)
    page.goto(f"{live_server}/requests/{failed.id}")
    entry = page.locator("#timeline li.event-failed.step-manifests_committed")
    expect(entry.locator(".what")).to_have_text("Failed at “Manifests committed to GitOps”")
    dot, label = entry.evaluate(
        "e => [getComputedStyle(e, '::before').backgroundColor,"
        " getComputedStyle(e.querySelector('.what')).color]"
    )
    step_dot = page.locator("#timeline li.event-provisioning.step-acs_account_created").evaluate(
        "e => getComputedStyle(e, '::before').backgroundColor"
    )
    assert dot != step_dot  # not the colour of a normal step
    red = re.fullmatch(r"rgb\((\d+), (\d+), (\d+)\)", dot).groups()
    assert int(red[0]) > 150 and int(red[1]) < 100, dot
    assert label == dot
