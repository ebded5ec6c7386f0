"""Usage from a real Prometheus decides quota increases: two weeks of workload backfilled with
promtool, served by a prometheus process, read with the metric names clusters export.

An increase of what is used goes through and reaches provisioned with its evidence; one of what
is idle waits for a super admin with the team's justification; a rise too large waits whatever
the use; and with Prometheus away, increases wait and pages still render."""

import re

import pytest
from sqlalchemy import func, select

from registry.audit.models import AuditEvent
from registry.extensions import db
from registry.products.models import Product
from registry.requests import services
from registry.requests.models import Request
from registry.usage import namespaces as usage
from tests import builders
from tests.requests.test_day_two import changed, form_body, live_product, provision
from tests.usage_source import Workload

MORE_CPU = "cpu-request-1-limit-2"  # from 0.5 cores: +100 %, but within the small size (1 core)
MORE_STORAGE = "storage-2"  # from 1 GiB
REASON = "The spring intake doubles the traffic."


def busy(plate: str) -> list[Workload]:
    """prod uses 0.4 of its 0.5 cores and 0.9 of its 1 GiB volume; dev almost nothing."""
    return [
        Workload(f"{plate}-prod", cpu=0.4, memory_gib=1.5, storage_used_gib=0.9,
                 storage_claim_gib=1.0),
        Workload(f"{plate}-dev", cpu=0.02, memory_gib=0.1, storage_used_gib=0.05,
                 storage_claim_gib=1.0),
    ]  # fmt: skip


def test_a_product_s_usage_is_read_from_prometheus(app, prometheus, owner, admin):
    product = live_product(owner, admin)
    prometheus(busy(product.licence_plate))
    found = usage.measure(product.licence_plate, "silver")
    assert found.available, found
    prod = found.namespaces["prod"]
    # The history's averages, within what a daily rhythm sampled hourly leaves.
    assert prod["cpu"].average == pytest.approx(0.4, rel=0.1)
    assert prod["memory"].average == pytest.approx(1.5, rel=0.1)
    assert prod["cpu"].peak == pytest.approx(0.52, rel=0.1)  # +30 % at the day's busiest
    assert prod["storage"].now == pytest.approx(0.9) and prod["storage"].capacity == 1.0
    assert found.namespaces["dev"]["cpu"].average == pytest.approx(0.02, rel=0.1)
    assert set(found.namespaces) == {"prod", "dev"}  # tools and test run nothing
    assert found.window_days == 14


def test_an_increase_of_what_is_used_is_approved_automatically_with_its_evidence(
    app, prometheus, owner, admin
):
    product = live_product(owner, admin)
    prometheus(busy(product.licence_plate))
    data = changed(product, quotas={"prod": {"cpu": MORE_CPU, "storage": MORE_STORAGE}})
    edit = services.submit_edit(product, data, owner)  # no justification needed
    db.session.commit()

    assert edit.is_auto_approved and edit.justification is None
    evidence = edit.usage_evidence
    assert evidence["passed"] and evidence["available"] and evidence["window_days"] == 14
    checks = {c["field"]: c for c in evidence["checks"]}
    assert set(checks) == {"namespaces.prod.cpu", "namespaces.prod.storage"}
    assert checks["namespaces.prod.cpu"]["used"] == pytest.approx(0.4, rel=0.1)
    assert checks["namespaces.prod.cpu"]["limit"] == pytest.approx(0.175)
    assert checks["namespaces.prod.storage"]["used"] == pytest.approx(0.9)
    note = edit.events[0].note
    assert note.startswith("Approved automatically, measured usage supports the increase:")
    assert "prod CPU: 0.4 cores used on average over 14 days of 0.5 requested" in note
    assert "prod storage: 0.9 GiB used of 1 GiB claimed (90%; above 80%)" in note
    # And in the audit log.
    [judged] = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "usage_judged"))
    assert judged.target == f"request #{edit.id}" and judged.actor == owner.email
    assert judged.detail.startswith("passed on silver: prod CPU: 0.4 cores used on average")


def test_an_increase_of_what_is_idle_waits_with_its_justification(
    app, client, prometheus, owner, admin
):
    product = live_product(owner, admin)
    prometheus(busy(product.licence_plate))
    data = changed(product, quotas={"dev": {"cpu": MORE_CPU}})
    with pytest.raises(services.JustificationNeeded):
        services.submit_edit(product, data, owner)
    db.session.rollback()
    product = db.session.get(Product, product.id)

    edit = services.submit_edit(product, data, owner, justification=REASON)
    db.session.commit()
    assert edit.status == "pending" and edit.justification == REASON
    [check] = edit.usage_evidence["checks"]
    assert not check["passed"] and check["used"] == pytest.approx(0.02, rel=0.1)
    assert "dev CPU: 0.02 cores used on average over 14 days of 0.5 requested (4%; under 35%)" in (
        edit.events[0].note
    )

    # The reviewer reads the reason beside the figures, on the queue and the request page.
    builders.login(client, admin)
    for page in ("/admin/queue", f"/requests/{edit.id}"):
        html = client.get(page).get_data(as_text=True)
        assert REASON in html, page
        assert "0.02 cores used on average over 14 days" in html, page
    # And on the card, the cluster's headroom: its nodes' 48 cores and 192 GiB, less what the
    # live product holds (four namespaces of 0.5 cores and 2 GiB).
    queue = client.get("/admin/queue").get_data(as_text=True)
    assert "Headroom on silver: <strong>46.0 of 48.0 cores</strong>" in queue
    assert "<strong>184 of 192 GiB</strong>" in queue


def test_a_rise_beyond_half_and_the_small_sizes_waits_however_busy(app, prometheus, owner, admin):
    product = live_product(owner, admin)
    prometheus(busy(product.licence_plate))
    data = changed(product, quotas={"prod": {"cpu": "cpu-request-2-limit-4"}})
    edit = services.submit_edit(product, data, owner, justification=REASON)
    db.session.commit()
    assert edit.status == "pending"
    [check] = edit.usage_evidence["checks"]
    assert check["why"] == "prod CPU rises by 300%, more than 50% and beyond 1 cores"


def test_with_prometheus_away_increases_wait_and_pages_still_render(
    app, client, prometheus, owner, admin
):
    product = live_product(owner, admin)
    server = prometheus(busy(product.licence_plate))
    server.stop()
    data = changed(product, quotas={"prod": {"cpu": MORE_CPU}})
    edit = services.submit_edit(product, data, owner, justification=REASON)
    db.session.commit()
    assert edit.status == "pending"
    assert edit.usage_evidence["available"] is False
    assert edit.usage_evidence["reason"].startswith("Prometheus could not be reached")

    builders.login(client, owner)
    plate = product.licence_plate
    assert client.get(f"/products/{plate}").status_code == 200
    assert client.get(f"/requests/{edit.id}").status_code == 200


def test_the_setting_turns_usage_approval_off(app, prometheus, owner, admin):
    app.config["AUTO_APPROVE_USED_INCREASES"] = False
    product = live_product(owner, admin)
    prometheus(busy(product.licence_plate))
    data = changed(product, quotas={"prod": {"cpu": MORE_CPU}})
    edit = services.submit_edit(product, data, owner, justification=REASON)
    db.session.commit()
    assert edit.status == "pending"
    assert edit.usage_evidence["passed"] is True  # the figures are kept all the same
    assert db.session.get(Request, edit.id).justification == REASON


def test_the_change_form_asks_why_only_when_the_increase_waits(
    app, client, prometheus, owner, admin
):
    product = live_product(owner, admin)
    prometheus(busy(product.licence_plate))
    plate = product.licence_plate
    builders.login(client, owner)
    url = f"/products/{plate}/change"

    # Used: the check step says it goes through, asks for no reason, and it does.
    body = form_body(product, **{"prod-cpu": MORE_CPU}, justification="", confirmed="")
    check = builders.post(client, url, body).get_data(as_text=True)
    assert "measured usage supports every increase" in check
    assert 'name="justification"' not in check
    sent = builders.post(client, url, {**body, "confirmed": "yes"})
    assert sent.status_code == 303
    [edit] = db.session.scalars(select(Request).where(Request.type == "edit")).all()
    assert edit.is_auto_approved
    provision(edit)

    # Idle: the check step asks why; sent without a reason it comes back with the question.
    product = db.session.get(Product, product.id)
    body = form_body(product, **{"dev-cpu": MORE_CPU}, justification="", confirmed="")
    check = builders.post(client, url, body).get_data(as_text=True)
    assert 'name="justification"' in check and "dev CPU: 0.02 cores used on average" in check
    refused = builders.post(client, url, {**body, "confirmed": "yes"})
    assert refused.status_code == 422
    assert "Say why more is needed" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Request)) == 2  # nothing new
    sent = builders.post(client, url, {**body, "confirmed": "yes", "justification": REASON})
    assert sent.status_code == 303
    waiting = db.session.scalars(select(Request).order_by(Request.id.desc())).first()
    assert waiting.status == "pending" and waiting.justification == REASON


def test_the_product_page_shows_what_each_namespace_uses(app, client, prometheus, owner, admin):
    product = live_product(owner, admin)
    plate = product.licence_plate
    server = prometheus(busy(plate))
    builders.login(client, owner)
    html = client.get(f"/products/{plate}").get_data(as_text=True)
    section = html[html.index('id="usage"') : html.index("<h2>Requests</h2>")]
    assert f"<code>{plate}-prod</code>" in section
    # prod CPU: 0.5 requested, about 0.4 used on average: a gauge near 80 %.
    row = section[section.index(f"<code>{plate}-prod</code>") :]
    row = row[: row.index("</tr>")]
    assert re.search(r'aria-label="(7[6-9]|8[0-4])% on average', row), row
    assert "nothing measured" in section  # tools and test run nothing

    # Prometheus away: the page still answers, and says why there is no usage.
    server.stop()
    app.extensions.pop("usage.kept", None)  # as after USAGE_CACHE_SECONDS
    html = client.get(f"/products/{plate}").get_data(as_text=True)
    assert "Usage not available (Prometheus could not be reached" in html


def test_without_a_prometheus_the_product_page_has_no_usage_section(app, client, owner, admin):
    product = live_product(owner, admin)
    builders.login(client, owner)
    html = client.get(f"/products/{product.licence_plate}").get_data(as_text=True)
    assert 'id="usage"' not in html


def test_replay_counts_what_other_thresholds_would_have_passed(
    app, runner, prometheus, owner, admin
):
    product = live_product(owner, admin)
    prometheus(busy(product.licence_plate))
    used = services.submit_edit(
        product, changed(product, quotas={"prod": {"storage": MORE_STORAGE}}), owner
    )
    db.session.commit()
    provision(used)
    product = db.session.get(Product, product.id)
    services.submit_edit(
        product, changed(product, quotas={"dev": {"cpu": MORE_CPU}}), owner, justification=REASON
    )
    db.session.commit()

    as_set = runner.invoke(args=["review", "replay-usage"])
    assert as_set.exit_code == 0, as_set.output
    assert "2 increases with usage evidence: 1 passed when asked; 1 would pass" in as_set.output
    # dev uses 4 % of its CPU: a 3 % threshold lets it through; storage at 90 % fails a 95 % one.
    looser = runner.invoke(args=["review", "replay-usage", "--used-share", "0.03"])
    assert "1 passed when asked; 2 would pass" in looser.output
    stricter = runner.invoke(args=["review", "replay-usage", "--storage-share", "0.95"])
    assert "1 passed when asked; 0 would pass" in stricter.output
    assert "storage share 0.95" in stricter.output


def test_the_super_admins_hear_of_an_increase_approved_on_usage(app, prometheus, owner, admin):
    from registry.outbox.models import OutboxEmail

    product = live_product(owner, admin)
    prometheus(busy(product.licence_plate))
    edit = services.submit_edit(
        product, changed(product, quotas={"prod": {"cpu": MORE_CPU}}), owner
    )
    db.session.commit()
    emails = {
        e.kind: e
        for e in db.session.scalars(select(OutboxEmail).where(OutboxEmail.request_id == edit.id))
    }
    assert set(emails) == {"approved", "increase_approved"}
    fyi = emails["increase_approved"]
    assert "admin@example.com" in fyi.recipients and owner.email not in fyi.recipients
    assert "For your information, an increase approved on usage" in fyi.subject
    assert "prod CPU: 0.4 cores used on average over 14 days" in fyi.body_text


def test_the_reviewers_email_carries_the_reason(app, prometheus, owner, admin):
    from registry.outbox.models import OutboxEmail

    product = live_product(owner, admin)
    prometheus(busy(product.licence_plate))
    edit = services.submit_edit(
        product, changed(product, quotas={"dev": {"cpu": MORE_CPU}}), owner, justification=REASON
    )
    db.session.commit()
    review = db.session.scalars(
        select(OutboxEmail).where(
            OutboxEmail.request_id == edit.id, OutboxEmail.kind == "awaiting_review"
        )
    ).one()
    assert f'Why more is needed: "{REASON}"' in review.body_text
    assert "dev CPU: 0.02 cores used on average" in review.body_text


def test_a_deletion_shows_what_still_runs_and_needs_a_reason(app, client, prometheus, owner, admin):
    product = live_product(owner, admin)
    plate = product.licence_plate
    server = prometheus(
        [
            Workload(f"{plate}-prod", cpu=0.4, memory_gib=1.5, pods=3,
                     storage_used_gib=0.9, storage_claim_gib=1.0),
            Workload(f"{plate}-dev", cpu=0.0, memory_gib=0.0, pods=0),
        ]
    )  # fmt: skip
    builders.login(client, owner)
    url = f"/products/{plate}/delete"
    page = client.get(url).get_data(as_text=True)
    assert "Still running:" in page and "prod: 3 pods, 1 volume claim" in page
    assert "dev:" not in page  # nothing runs there

    refused = builders.post(client, url, {"confirmation": plate, "reason": "  "})
    assert refused.status_code == 422
    assert "Say why the product should be deleted" in refused.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Request)) == 1

    sent = builders.post(client, url, {"confirmation": plate, "reason": "The survey ended."})
    assert sent.status_code == 303
    deletion = db.session.scalars(select(Request).where(Request.type == "delete")).one()
    assert deletion.justification == "The survey ended."

    reviewer = app.test_client()
    builders.login(reviewer, admin)
    card = reviewer.get("/admin/queue").get_data(as_text=True)
    assert "Why delete it:</strong> “The survey ended.”" in card
    assert "prod: 3 pods, 1 volume claim" in card
    # Kept like usage: the queue does not ask Prometheus again for each card on each render.
    server.stop()
    assert "prod: 3 pods, 1 volume claim" in reviewer.get("/admin/queue").get_data(as_text=True)


def test_the_cost_of_the_quotas_on_the_product_page_and_the_change_form(app, client, owner, admin):
    app.config["COST_PER_MONTH"] = {"cpu": 20.0, "memory": 2.0, "storage": 1.0, "snapshot": 0.5}
    product = live_product(owner, admin)
    plate = product.licence_plate
    builders.login(client, owner)
    # Four namespaces of 0.5 cores, 2 GiB, 1 GiB of storage and 5 snapshots: 4 x 17.50.
    html = client.get(f"/products/{plate}").get_data(as_text=True)
    assert '<dd id="monthly-cost">CAD 70.00 a month</dd>' in html
    body = form_body(product, **{"prod-cpu": MORE_CPU}, justification="", confirmed="")
    check = builders.post(client, f"/products/{plate}/change", body).get_data(as_text=True)
    # prod from 0.5 to 1 core: 10 more.
    assert "CAD 70.00 a month now, <strong>CAD 80.00 a month</strong> with this change" in check
    app.config["COST_PER_MONTH"] = {}
    assert "monthly-cost" not in client.get(f"/products/{plate}").get_data(as_text=True)


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("USAGE_PROMETHEUS_URLS", "silver", "silver=https://"),
        ("USAGE_PROMETHEUS_URLS", {"silver": "thanos:9091"}, "is not an http(s) URL"),
        ("COST_PER_MONTH", {"gpu": 1}, "REGISTRY_COST_PER_MONTH"),
        ("COST_PER_MONTH", {"cpu": -1}, "REGISTRY_COST_PER_MONTH"),
    ],
)
def test_usage_and_cost_settings_are_checked_at_start(setting, value, says):
    from registry import create_app

    with pytest.raises(RuntimeError, match=re.escape(says)):
        create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", setting: value})


def test_cluster_urls_are_read_from_either_notation():
    from registry.config import cluster_urls

    assert cluster_urls("silver=https://a:9091, gold=https://b") == {
        "silver": "https://a:9091",
        "gold": "https://b",
    }
    assert cluster_urls({"silver": "http://127.0.0.1:9090"}) == {"silver": "http://127.0.0.1:9090"}


def test_the_change_form_shows_what_each_namespace_uses_beside_its_quota(
    app, client, prometheus, owner, admin
):
    product = live_product(owner, admin)
    prometheus(busy(product.licence_plate))
    builders.login(client, owner)
    html = client.get(f"/products/{product.licence_plate}/change").get_data(as_text=True)
    uses = re.findall(r'<p class="quota-use">([^<]+)</p>', html)
    # prod and dev run: CPU and memory on average and at peak, storage held; tools and test don't.
    assert len(uses) == 6, uses
    assert any(re.fullmatch(r"uses 0\.(39|4|41) on average, 0\.5[1-3] at peak", u) for u in uses)
    assert "0.9 of 1 GiB held" in uses
    assert "what the namespace used over the last 14 days" in html


def test_without_prometheus_the_change_form_says_usage_is_not_available(
    app, client, prometheus, owner, admin
):
    product = live_product(owner, admin)
    server = prometheus(busy(product.licence_plate))
    server.stop()
    builders.login(client, owner)
    html = client.get(f"/products/{product.licence_plate}/change").get_data(as_text=True)
    assert "Usage not available (Prometheus could not be reached" in html
    assert 'class="quota-use"' not in html
