"""The cost report: each ministry's quotas, charged month by month for the days its products
held them, read from the requests' own history; a page and a CSV for the staff only."""

import csv
import io
from calendar import monthrange
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from registry.capacity import costs
from registry.extensions import db
from registry.requests import services
from registry.requests.models import Request, RequestEvent
from registry.timeutil import utcnow
from tests import builders
from tests.requests.test_day_two import changed, live_product, provision

# The default quotas in four namespaces: 0.5 core, 2 GiB, 1 GiB of storage and 5 snapshots
# each, at 26, 3.5, 0.45 and 0 a month.
DEFAULT_MONTHLY = 4 * (0.5 * 26 + 2 * 3.5 + 1 * 0.45)


def month_starts(now, back: int):
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    for _ in range(back):
        start = (start - timedelta(days=1)).replace(day=1)
    return start


def provisioned_at(req: Request, when) -> None:
    """Move the request's provisioned report to ``when`` (its history, as if it happened then)."""
    db.session.execute(
        update(RequestEvent)
        .where(RequestEvent.request_id == req.id, RequestEvent.to_status == "provisioned")
        .values(created_at=when)
    )
    db.session.commit()


def create_of(product) -> Request:
    return db.session.scalar(
        select(Request).where(Request.product_id == product.id, Request.type == "create")
    )


def label(when) -> str:
    return f"{when:%Y-%m}"


def test_each_ministry_is_charged_for_the_days_it_held_its_quotas(app, owner, admin):
    now = utcnow()
    two_ago, last = month_starts(now, 2), month_starts(now, 1)
    days_last = monthrange(last.year, last.month)[1]

    # CITZ: a product live since two months ago, all of last month.
    citz = live_product(owner, admin)
    provisioned_at(create_of(citz), two_ago)
    # AG: live from the start of last month, deleted on its 16th (15 days held).
    ag = live_product(owner, admin, ministry_code="AG")
    provisioned_at(create_of(ag), last)
    deletion = services.submit_delete(ag, owner, ag.licence_plate, reason="Moved on.")
    db.session.commit()
    services.decide(deletion.id, admin, approve=True)
    db.session.commit()
    provision(deletion)
    provisioned_at(deletion, last + timedelta(days=15))

    report = costs.build(now)
    assert report.months[-1] == label(now) == report.current and len(report.months) == 12
    assert report.rows["CITZ"][label(last)] == pytest.approx(DEFAULT_MONTHLY)
    assert report.rows["AG"][label(last)] == pytest.approx(DEFAULT_MONTHLY * 15 / days_last)
    assert label(now) not in report.rows["AG"]  # deleted before this month
    assert report.products["CITZ"][label(last)] == 1
    assert report.totals[label(last)] == pytest.approx(DEFAULT_MONTHLY * (1 + 15 / days_last))


def test_a_change_is_charged_from_the_day_it_was_applied(app, owner, admin):
    now = utcnow()
    last = month_starts(now, 1)
    days_last = monthrange(last.year, last.month)[1]
    product = live_product(owner, admin)
    provisioned_at(create_of(product), month_starts(now, 3))
    edit = services.submit_edit(
        product, changed(product, quotas={"prod": {"cpu": "cpu-request-1-limit-2"}}), owner,
        justification="More traffic.",
    )  # fmt: skip
    db.session.commit()
    if edit.status == "pending":
        services.decide(edit.id, admin, approve=True)
        db.session.commit()
    provision(edit)
    provisioned_at(edit, last + timedelta(days=10))
    report = costs.build(now)
    more = 0.5 * 26  # half a core more, a month
    expected = DEFAULT_MONTHLY + more * (days_last - 10) / days_last
    assert report.rows["CITZ"][label(last)] == pytest.approx(expected)


def test_the_report_is_for_the_staff_as_a_page_and_a_csv(app, client, owner, admin, support):
    product = live_product(owner, admin)
    for person, status in ((owner, 403), (support, 200), (admin, 200)):
        client = app.test_client()
        builders.login(client, person)
        assert client.get("/reports/cost").status_code == status
        assert client.get("/reports/cost.csv").status_code == status
    page = client.get("/reports/cost").get_data(as_text=True)
    assert "Cost by ministry and month" in page and "CITZ" in page
    rows = list(csv.DictReader(io.StringIO(client.get("/reports/cost.csv").get_data(as_text=True))))
    [row] = rows
    assert row["ministry"] == "CITZ" and row["month"] == label(utcnow())
    assert row["products"] == "1" and row["currency"] == "CAD"
    assert float(row["cost"]) >= 0
    assert product.licence_plate not in page  # by ministry, not by product


def test_the_report_is_kept_until_another_request_is_provisioned(app, owner, admin):
    live_product(owner, admin)
    first = costs.report()
    assert costs.report() is first
    live_product(owner, admin, ministry_code="AG")
    second = costs.report()
    assert second is not first and "AG" in second.rows
