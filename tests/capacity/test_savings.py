"""Right-sizing against a real Prometheus: a namespace whose peak stays far under its quota is
offered a smaller one, on the product page and by email; "Apply this saving" asks for it and it
is applied without review; "Not now" silences the product for a while; an offer the next
check no longer makes is withdrawn; a Prometheus away changes nothing."""

from datetime import timedelta

from sqlalchemy import select

from registry.capacity import savings, scheduler
from registry.capacity.models import SavingOffer
from registry.extensions import db
from registry.outbox.models import OutboxEmail
from registry.products.models import Product
from registry.reference.models import ENVIRONMENTS
from registry.requests import services
from registry.requests.models import Request
from registry.timeutil import utcnow
from tests import builders
from tests.requests.test_day_two import changed, live_product, provision
from tests.usage_source import Workload

BIG_CPU, BIG_MEMORY = "cpu-request-4-limit-8", "memory-request-16-limit-32"


def oversized(owner, admin) -> Product:
    """prod holds 4 cores and 16 GiB; the other namespaces the smallest quotas."""
    quotas = {env: dict(builders.DEFAULT_QUOTAS) for env in ENVIRONMENTS}
    quotas["prod"].update(cpu=BIG_CPU, memory=BIG_MEMORY)
    return live_product(owner, admin, quotas=quotas)


def idle(plate: str) -> list[Workload]:
    """prod peaks at about 0.39 cores and 2.6 GiB (+30 % at the day's busiest); dev is small
    and already at the smallest quotas."""
    return [
        Workload(f"{plate}-prod", cpu=0.3, memory_gib=2.0),
        Workload(f"{plate}-dev", cpu=0.01, memory_gib=0.1),
    ]


def test_an_oversized_namespace_is_offered_a_saving_and_the_team_applies_it(
    app, client, prometheus, owner, admin
):
    product = oversized(owner, admin)
    plate = product.licence_plate
    prometheus(idle(plate))

    assert savings.check() == {"offered": 1, "withdrawn": 0, "clusters_unread": 0}
    [offer] = db.session.scalars(select(SavingOffer))
    assert offer.state == "offered" and offer.window_days == 30
    # The smallest option whose request the peak uses at most 70 % of: 1 core, 4 GiB.
    assert {f: p["to"] for f, p in offer.proposal.items()} == {
        "namespaces.prod.cpu": "cpu-request-1-limit-2",
        "namespaces.prod.memory": "memory-request-4-limit-8",
    }
    assert 0.3 < offer.proposal["namespaces.prod.cpu"]["peak"] < 0.45
    # 3 cores at 26 and 12 GiB at 3.5 a month.
    assert offer.monthly_saving == 3 * 26.0 + 12 * 3.5
    [email] = db.session.scalars(select(OutboxEmail).where(OutboxEmail.kind == "saving_offer"))
    assert set(email.recipients) == set(product.contact_emails)
    assert email.subject == f"[Product Registry] A saving on offer: {product.name} ({plate})"
    assert (
        "CAD 120.00 a month" in email.body_text and f"/products/{plate}#saving" in email.body_text
    )
    # The same offer is not made twice.
    assert savings.check()["offered"] == 0

    builders.login(client, owner)
    page = client.get(f"/products/{plate}").get_data(as_text=True)
    assert "A saving on offer: CAD 120.00 a month" in page
    assert "prod CPU" in page and "1 core, limit 2" in page and "Apply this saving" in page

    response = builders.post(client, f"/products/{plate}/savings/{offer.id}/apply")
    assert response.status_code == 303
    db.session.expire_all()
    offer = db.session.get(SavingOffer, offer.id)
    assert offer.state == "applied" and offer.answered_by_id == owner.id
    edit = db.session.get(Request, offer.request_id)
    assert edit.is_auto_approved and edit.requested_by_id == owner.id
    assert response.headers["Location"].endswith(f"/requests/{edit.id}")
    provision(edit)
    live = db.session.get(Product, product.id).live_quotas["prod"]
    assert live["cpu"] == "cpu-request-1-limit-2" and live["memory"] == "memory-request-4-limit-8"
    # Applied twice (a double click): the second is told it is answered, nothing more is asked.
    again = builders.post(client, f"/products/{plate}/savings/{offer.id}/apply")
    assert again.status_code == 303
    assert db.session.scalar(select(Request).order_by(Request.id.desc())).id == edit.id
    # Right-sized now: nothing more to offer.
    assert savings.check()["offered"] == 0


def test_not_now_silences_the_product_for_a_while(app, client, prometheus, owner, admin):
    product = oversized(owner, admin)
    prometheus(idle(product.licence_plate))
    savings.check()
    [offer] = db.session.scalars(select(SavingOffer))
    builders.login(client, owner)
    response = builders.post(
        client, f"/products/{product.licence_plate}/savings/{offer.id}/dismiss"
    )
    assert response.status_code == 303
    db.session.expire_all()
    offer = db.session.get(SavingOffer, offer.id)
    assert offer.state == "dismissed"
    assert offer.silenced_until.date() == (utcnow() + timedelta(days=90)).date()
    page = client.get(f"/products/{product.licence_plate}").get_data(as_text=True)
    assert "A saving on offer" not in page

    assert savings.check()["offered"] == 0
    assert savings.check(utcnow() + timedelta(days=89))["offered"] == 0
    assert savings.check(utcnow() + timedelta(days=91))["offered"] == 1


def test_an_offer_no_longer_true_is_withdrawn(app, prometheus, owner, admin):
    product = oversized(owner, admin)
    prometheus(idle(product.licence_plate))
    savings.check()
    # The team lowers prod's CPU itself; memory is still oversized: a new offer, for memory.
    edit = services.submit_edit(
        product, changed(product, quotas={"prod": {"cpu": "cpu-request-1-limit-2"}}), owner
    )
    db.session.commit()
    provision(edit)
    assert savings.check() == {"offered": 1, "withdrawn": 0, "clusters_unread": 0}
    first, second = db.session.scalars(select(SavingOffer).order_by(SavingOffer.id))
    assert first.state == "withdrawn" and second.state == "offered"
    assert set(second.proposal) == {"namespaces.prod.memory"}


def test_a_product_with_an_open_request_is_left_alone(app, prometheus, owner, admin):
    product = oversized(owner, admin)
    prometheus(idle(product.licence_plate))
    services.submit_edit(
        product,
        changed(product, quotas={"dev": {"storage": "storage-16"}}),
        owner,
        justification="More logs.",
    )
    db.session.commit()
    assert savings.check()["offered"] == 0


def test_with_prometheus_away_nothing_changes(app, prometheus, owner, admin):
    product = oversized(owner, admin)
    server = prometheus(idle(product.licence_plate))
    savings.check()
    server.stop()
    assert savings.check() == {"offered": 0, "withdrawn": 0, "clusters_unread": 3}
    [offer] = db.session.scalars(select(SavingOffer))
    assert offer.state == "offered"


def test_the_weekly_run_is_claimed_by_one_process(app):
    now = utcnow()
    week = timedelta(days=7)
    assert scheduler.claim("rightsizing", week, now) is True
    assert scheduler.claim("rightsizing", week, now + timedelta(days=6)) is False
    assert scheduler.claim("rightsizing", week, now + week) is True
    assert scheduler.claim("rightsizing", week, now + week) is False
