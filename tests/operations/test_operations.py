"""The operations page (numbers of a known scenario in its SVG charts and tables) and stuck
requests: found with their reason, and told to the super admins once per threshold crossed,
however many workers check at the same time."""

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from registry import wiring
from registry.extensions import db
from registry.operations import charts, queries, stuck
from registry.operations.models import StuckReminder
from registry.outbox.models import OutboxEmail
from registry.products.models import Product
from registry.requests import services
from registry.requests.models import Request, RequestEvent
from registry.timeutil import utcnow
from tests import builders
from tests.builders import report
from tests.operations import ops_scenario
from tests.operations.ops_scenario import MINUTE, retime


def page_of(client, user) -> str:
    builders.login(client, user)
    response = client.get("/operations")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def figure(html: str, chart_id: str) -> str:
    match = re.search(rf'<figure class="chart" id="{chart_id}-figure">(.*?)</figure>', html, re.S)
    assert match, f"no figure {chart_id}"
    return match.group(1)


def table_rows(html: str, chart_id: str) -> dict[str, list[str]]:
    table = re.search(rf'<table id="{chart_id}-table">(.*?)</table>', html, re.S).group(1)
    rows = {}
    for row in re.findall(r"<tr><th scope=\"row\">(.*?)</th>(.*?)</tr>", table, re.S):
        rows[row[0]] = re.findall(r"<td>(.*?)</td>", row[1])
    return rows


# --- the page ------------------------------------------------------------------------------


def test_the_weekly_numbers_of_a_known_scenario(app, owner, admin):
    now = utcnow()
    ops_scenario.build(owner, admin, now)
    overview = queries.overview(now)

    last_week = overview.weeks[-2]
    assert last_week.outcomes == {
        "provisioned": 3,
        "rejected": 1,
        "failed": 1,
        "cancelled": 0,
        "open": 0,
    }
    assert overview.weeks[-1].outcomes["open"] == 2  # this week: the two pending
    hours = sorted(round(s / 3600, 2) for s in last_week.to_decision)
    assert hours == [1, 2, 3, 4, 6]
    assert queries.percentile(last_week.to_decision, 0.5) == pytest.approx(3 * 3600)
    assert queries.percentile(last_week.to_decision, 0.9) == pytest.approx(5.2 * 3600)
    minutes = sorted(round(s / 60, 2) for s in last_week.to_provisioned)
    assert minutes == [10, 20, 30]
    assert overview.queue_ages == [1, 0, 0, 1]
    assert [s.step for s in overview.steps] == list(queries.STEPS)
    assert {s.step: s.count for s in overview.steps}["provisioned"] == 3
    # Each provisioned request's 8 steps share its 10, 20 or 30 minutes: the median is 20/8.
    median = {s.step: s.median_seconds for s in overview.steps}["provisioned"]
    assert median == pytest.approx(20 * 60 / 8, abs=1)
    assert overview.failures == [("Manifests committed to GitOps", 1)]


def test_the_page_draws_the_scenario_in_svg_and_tables(app, client, owner, admin, support):
    now = utcnow()
    ops_scenario.build(owner, admin, now)
    html = page_of(client, support)
    last_week = queries.week_label(queries.week_start(now) - timedelta(weeks=1))

    outcomes = figure(html, "chart-outcomes")
    assert 'role="img"' in outcomes and '<title id="chart-outcomes-title">' in outcomes
    # The stacked bar of last week: a segment per outcome, each with its number, the total above.
    assert f"<title>{last_week}: 3 provisioned</title>" in outcomes
    assert f"<title>{last_week}: 1 rejected</title>" in outcomes
    assert f"<title>{last_week}: 1 failed</title>" in outcomes
    assert re.search(r'<text [^>]*class="value-label">5</text>', outcomes)
    assert f"{last_week}: provisioned 3, rejected 1, failed 1, cancelled 0" in outcomes  # <desc>
    assert table_rows(html, "chart-outcomes")[last_week] == ["3", "1", "1", "0", "0"]

    assert table_rows(html, "chart-decision")[last_week] == ["3.0 h", "5.2 h"]
    assert f"<title>{last_week}, Median: 3.0 h</title>" in figure(html, "chart-decision")
    assert table_rows(html, "chart-provisioned")[last_week] == ["20 min", "28 min"]
    assert table_rows(html, "chart-queue") == {
        "under 1 hour": ["1"],
        "1 hour to 1 day": ["0"],
        "1 to 2 days": ["0"],
        "over 2 days": ["1"],
    }
    assert list(table_rows(html, "chart-steps")) == [
        charts_label for charts_label in queries.STEP_LABELS.values()
    ]
    assert table_rows(html, "chart-failures") == {"Manifests committed to GitOps": ["1"]}
    assert "<title>Manifests committed to GitOps: 1</title>" in figure(html, "chart-failures")
    assert 'style="' not in html and "style=" not in html
    # The old pending request is stuck, with why and what to do.
    assert "Waiting for a decision for 3 days." in html
    assert 'href="/operations/runbook#waiting-for-a-decision"' in html
    assert 'href="/operations/runbook"' in html


def test_this_week_against_the_four_before(app, owner, admin):
    now = utcnow()
    ops_scenario.build(owner, admin, now)
    # This week: one decision after 30 minutes, faster than the 3 hours' median before.
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    start = max(queries.week_start(now), now - timedelta(hours=1))
    retime(req.id, start, start + 30 * MINUTE, start + 30 * MINUTE)

    decision = queries.overview(now).comparisons[0]
    assert decision.this_week == pytest.approx(30 * 60)
    assert decision.before == pytest.approx(3 * 3600)
    assert decision.verdict == "faster" and decision.good is True


def test_an_empty_registry_draws_no_chart_and_says_so(app, client, admin):
    html = page_of(client, admin)
    assert "No request is stuck." in html
    assert "No request is waiting for a decision." in html
    assert "No reports from the provisioner in these weeks." in html


def test_the_chart_helper_scales_to_a_nice_axis():
    assert charts.nice_ceiling(7) == 10 and charts.nice_ceiling(13) == 20
    assert charts.nice_ceiling(230) == 250 and charts.nice_ceiling(0) == 1
    chart = charts.bars("c", "T", "D", ["a", "b"], [4, 8])
    heights = [r.height for r in chart.rects]
    assert heights[1] == pytest.approx(2 * heights[0])
    assert [g.text for g in chart.gridlines] == ["0", "2", "4", "6", "8"]
    assert charts.axis_ceiling(1) == 4 and charts.axis_ceiling(5) == 8
    assert charts.axis_ceiling(30) == 40 and charts.axis_ceiling(230) == 400
    # Durations step in round units: 27 hours is 4 steps of 12 hours.
    assert charts.axis_ceiling(27 * 3600, "duration") == 48 * 3600
    assert charts.axis_ceiling(50 * 60, "duration") == 60 * 60


def test_the_runbook_page_has_a_section_for_every_reason(app, client, support):
    builders.login(client, support)
    html = client.get("/operations/runbook").get_data(as_text=True)
    for anchor in stuck.RUNBOOK_ANCHORS.values():
        assert f'<section id="{anchor}">' in html
    app.config["RUNBOOK_URL"] = "https://docs.example/runbook"
    response = client.get("/operations/runbook")
    assert response.status_code == 302
    assert response.headers["Location"] == "https://docs.example/runbook"


def test_the_runbook_is_read_from_inside_the_package():
    # An installed registry (the image's wheel) has no docs/ folder beside it: the page's text
    # must be package data (pyproject.toml; scripts/check-image-install serves it from a wheel).
    from pathlib import Path

    import registry
    from registry.operations import views

    assert Path(registry.__file__).resolve().parent in views.RUNBOOK.parents
    assert views.RUNBOOK.is_file()


# --- stuck requests ------------------------------------------------------------------------


def counts(request_id: int) -> tuple[int, int, int]:
    """(stuck emails, StuckReminder rows, reminder entries on the timeline) of a request."""
    db.session.rollback()
    return (
        db.session.scalar(
            select(func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.kind == "stuck", OutboxEmail.request_id == request_id)
        ),
        db.session.scalar(
            select(func.count())
            .select_from(StuckReminder)
            .where(StuckReminder.request_id == request_id)
        ),
        db.session.scalar(
            select(func.count())
            .select_from(RequestEvent)
            .where(RequestEvent.request_id == request_id, RequestEvent.kind == "reminder")
        ),
    )


def check_concurrently(app, workers: int = 2) -> list[int]:
    """``workers`` threads run the check at the same instant, each in its own app context (its
    own session and connection), as two processes would."""
    barrier = threading.Barrier(workers)
    results, errors = [], []

    def work():
        try:
            with app.app_context():
                barrier.wait(5)
                results.append(stuck.remind())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return results


def approved_and_silent(owner, admin, minutes_silent: int) -> Request:
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    for step in ("workflow_started", "acs_account_created", "manifests_committed"):
        report(req, step)
    now = utcnow()
    retime(
        req.id,
        now - 2 * timedelta(hours=1),
        now - timedelta(hours=1),
        now - minutes_silent * MINUTE,
    )
    return req


def test_a_stuck_decision_is_reminded_once_with_two_workers(app, owner, admin, other_admin):
    req = builders.submit(owner)
    retime(req.id, utcnow() - timedelta(days=3), None, utcnow() - timedelta(days=3))
    product_status = db.session.get(Product, req.product_id).status

    assert sum(check_concurrently(app)) == 1
    assert counts(req.id) == (1, 1, 1)
    email = db.session.scalar(select(OutboxEmail).where(OutboxEmail.kind == "stuck"))
    assert (
        email.subject
        == f"[Product Registry] Stuck: {req.product.name} ({req.product.licence_plate})"
    )
    assert sorted(email.recipients) == sorted([admin.email, other_admin.email])
    assert "waiting for a decision for 3 days" in email.body_text
    assert (
        "https://registry.example.test/operations/runbook#waiting-for-a-decision" in email.body_text
    )
    assert "https://registry.example.test/admin/queue" in email.body_html

    # A later check, by either worker, sends nothing more.
    assert sum(check_concurrently(app)) == 0
    assert counts(req.id) == (1, 1, 1)
    # The reminder moved nothing: the request is still pending, its product still requested.
    db.session.expire_all()
    assert db.session.get(Request, req.id).status == "pending"
    assert db.session.get(Product, req.product_id).status == product_status


def test_a_silent_provisioner_is_reminded_once_and_again_after_it_moves_on_and_stalls(
    app, owner, admin
):
    req = approved_and_silent(owner, admin, minutes_silent=42)
    [found] = stuck.find()
    assert found.reason == (
        "no report from the provisioner for 42 minutes after manifests_committed on silver"
    )
    assert sum(check_concurrently(app)) == 1
    assert counts(req.id) == (1, 1, 1)
    assert sum(check_concurrently(app)) == 0

    # The provisioner reports again: not stuck any more, nothing sent.
    report(req, "pull_request_merged")
    assert stuck.find() == []
    assert sum(check_concurrently(app)) == 0
    # ... and stalls again: a new threshold crossed, a new reminder.
    now = utcnow()
    last = db.session.scalar(
        select(RequestEvent)
        .where(RequestEvent.request_id == req.id)
        .order_by(RequestEvent.id.desc())
    )
    last.created_at = now - 35 * MINUTE
    db.session.commit()
    assert sum(check_concurrently(app)) == 1
    assert counts(req.id) == (2, 2, 2)
    keys = db.session.scalars(select(StuckReminder.key).order_by(StuckReminder.id)).all()
    assert keys[0] != keys[1] and all(k.startswith("silent:") for k in keys)


def test_when_both_workers_found_it_the_unique_key_lets_one_write(app, owner, admin, monkeypatch):
    """Both workers have found the stuck request before either writes: the second insert of the
    same (request, key) meets the unique constraint (on PostgreSQL it waits for the first's
    commit), and that worker sends nothing."""
    req = approved_and_silent(owner, admin, minutes_silent=45)
    found_by_both = threading.Barrier(2)
    find = stuck.find

    def find_then_wait(*args, **kwargs):
        found = find(*args, **kwargs)
        found_by_both.wait(10)
        return found

    monkeypatch.setattr(stuck, "find", find_then_wait)
    assert sorted(check_concurrently(app)) == [0, 1]
    assert counts(req.id) == (1, 1, 1)


@pytest.mark.processes  # two checker threads
def test_two_background_checkers_send_one_reminder(app, owner, admin):
    req = approved_and_silent(owner, admin, minutes_silent=50)
    app.config["STUCK_CHECK_SECONDS"] = 0.05
    checkers = [stuck.StuckChecker(app), stuck.StuckChecker(app)]
    for checker in checkers:
        checker.start()
    try:
        threading.Event().wait(1.5)  # some 30 rounds each
    finally:
        for checker in checkers:
            checker.stop()
            checker.join(10)
    assert counts(req.id) == (1, 1, 1)


def test_the_reminder_is_on_the_timeline_and_moves_nothing(app, client, owner, admin):
    req = approved_and_silent(owner, admin, minutes_silent=42)
    stuck.remind()
    builders.login(client, admin)
    html = client.get(f"/requests/{req.id}").get_data(as_text=True)
    assert "Super admins reminded" in html
    assert "no report from the provisioner for 42 minutes after manifests_committed" in html
    assert "entry-reminder" in html
    db.session.expire_all()
    assert db.session.get(Request, req.id).status == "provisioning"
    # The operations page says it was reminded, and offers the re-send.
    html = client.get("/operations").get_data(as_text=True)
    assert "Super admins reminded" in html
    assert f'action="/admin/requests/{req.id}/resend"' in html
    assert 'href="/operations/runbook#no-report-from-the-provisioner"' in html


def test_a_request_whose_message_never_left_is_said_so(app, owner, admin):
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)  # its message waits in the outbox: no relay
    db.session.commit()
    now = utcnow()
    retime(req.id, now - timedelta(hours=2), now - timedelta(hours=1), now - timedelta(hours=1))
    [found] = stuck.find()
    assert found.reason.startswith("not yet sent to the provisioner: 1 message waiting")
    assert found.runbook_anchor == "not-yet-sent-to-the-provisioner"


def test_the_background_work_runs_the_check(nats_app):
    threads = wiring.start(nats_app)
    try:
        assert any(isinstance(t, stuck.StuckChecker) and t.is_alive() for t in threads)
    finally:
        wiring.stop()
