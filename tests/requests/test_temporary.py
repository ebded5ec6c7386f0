"""Increases that end by themselves: an end day asked by the team or set by the granting super
admin; a week before, the team is told with a link to extend; on the day the registry asks for
the earlier quotas back in its own name, approved at once and applied through the lifecycle;
while another request is open the return waits and says so. Time is the ``on`` day given to
the check, never a sleep. (Through the reference provisioner and NATS:
tests/provisioner/test_day_two_provisioner.py.)"""

from datetime import timedelta

import pytest
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.auth.models import REGISTRY_EMAIL
from registry.capacity import ends
from registry.extensions import db
from registry.outbox.models import OutboxEmail
from registry.products.models import Product
from registry.requests import services, temporary
from registry.requests.models import Request, TemporaryIncrease
from tests import builders
from tests.requests.test_day_two import BIGGER_CPU, changed, form_body, live_product, provision

SMALL_CPU = builders.DEFAULT_QUOTAS["cpu"]
WHY = "A load test of the spring release."


def in_days(n: int):
    return temporary.today() + timedelta(days=n)


def temporary_increase(owner, admin, days: int = 30, **decide):
    """A live product whose prod CPU was raised until ``days`` from today, applied."""
    product = live_product(owner, admin)
    data = changed(product, quotas={"prod": {"cpu": BIGGER_CPU}})
    edit = services.submit_edit(product, data, owner, justification=WHY, ends_on=in_days(days))
    db.session.commit()
    assert edit.status == "pending" and edit.quota_ends_on == in_days(days)
    services.decide(edit.id, admin, approve=True, **decide)
    db.session.commit()
    provision(edit)
    return db.session.get(Product, product.id), edit


def prod_cpu(product_id: int) -> str:
    db.session.expire_all()
    product = db.session.get(Product, product_id)
    return {ns.environment: ns.cpu for ns in product.namespaces}["prod"]


def emails(kind: str) -> list[OutboxEmail]:
    return list(db.session.scalars(select(OutboxEmail).where(OutboxEmail.kind == kind)))


def test_an_increase_goes_back_on_its_day_after_the_team_was_warned(app, owner, admin):
    product, edit = temporary_increase(owner, admin, days=30)
    [increase] = db.session.scalars(select(TemporaryIncrease))
    assert increase.outcome is None and increase.ends_on == in_days(30)
    assert increase.restore == {"namespaces.prod.cpu": {"from": SMALL_CPU, "to": BIGGER_CPU}}

    # Eight days before: nothing yet. Seven days before: the team is told, once.
    assert ends.check(in_days(22)) == {"warned": 0, "reverted": 0, "waiting": 0, "changed": 0}
    assert ends.check(in_days(23))["warned"] == 1
    assert ends.check(in_days(24))["warned"] == 0
    [warning] = emails("increase_ending")
    assert set(warning.recipients) == set(product.contact_emails)
    assert f"/products/{product.licence_plate}/change" in warning.body_text
    assert "prod CPU: back to 0.5 cores, limit 1.5 (now 2 cores, limit 4)" in warning.body_text
    assert "in 7 days" in warning.body_text

    # The day before: still nothing. On the day: the registry asks for the earlier quota back.
    assert ends.check(in_days(29))["reverted"] == 0
    assert ends.check(in_days(30))["reverted"] == 1
    assert ends.check(in_days(30))["reverted"] == 0  # once
    back = db.session.scalars(select(Request).order_by(Request.id.desc())).first()
    assert back.requested_by.email == REGISTRY_EMAIL and back.requested_by.is_registry
    assert back.is_auto_approved and back.status == "approved"
    assert back.granted_data["namespaces"]["prod"]["cpu"] == SMALL_CPU
    assert back.events[0].note.startswith(
        f"Approved automatically: The temporary increase of request #{edit.id} ended on"
    )
    assert "prod CPU goes down from 2 cores, limit 4 to 0.5 cores, limit 1.5" in back.events[0].note
    # The team is told (the registry's own address never gets mail).
    [approved] = [e for e in emails("approved") if e.request_id == back.id]
    assert REGISTRY_EMAIL not in approved.recipients
    assert set(approved.recipients) == set(product.contact_emails)

    provision(back)
    assert prod_cpu(product.id) == SMALL_CPU
    increase = db.session.get(TemporaryIncrease, increase.id)
    assert increase.outcome == "reverted" and increase.revert_request_id == back.id
    notes = [e.note for e in edit.events if e.kind == "temporary"]
    assert notes[0].startswith("The team was told the increase ends on")
    assert notes[1].startswith("The increase ended on") and f"request #{back.id}" in notes[1]
    # The registry's account cannot sign in.
    assert not back.requested_by.is_active


def test_the_return_waits_for_an_open_request_and_says_so(app, client, owner, admin):
    product, edit = temporary_increase(owner, admin, days=10)
    other = services.submit_edit(
        product,
        changed(product, quotas={"dev": {"storage": "storage-16"}}),
        owner,
        justification="More logs.",
    )
    db.session.commit()
    assert other.status == "pending"

    assert ends.check(in_days(10)) == {"warned": 0, "reverted": 0, "waiting": 1, "changed": 0}
    assert ends.check(in_days(11))["waiting"] == 0  # said once
    assert prod_cpu(product.id) == BIGGER_CPU
    [said] = [e.note for e in other.events if e.kind == "temporary"]
    assert f"The temporary increase of request #{edit.id} ended on" in said
    builders.login(client, owner)
    page = client.get(f"/products/{product.licence_plate}").get_data(as_text=True)
    assert f'the quotas go back once <a href="/requests/{other.id}">request #{other.id}</a>' in (
        page
    )

    services.cancel(other.id, owner)
    db.session.commit()
    assert ends.check(in_days(11))["reverted"] == 1


def test_a_later_day_is_reviewed_a_sooner_one_is_not(app, owner, admin):
    product, _ = temporary_increase(owner, admin, days=30)
    same = changed(product)

    # Later: reviewed, with a reason; the product keeps the quota until the new day.
    with pytest.raises(services.JustificationNeeded):
        services.submit_edit(product, same, owner, ends_on=in_days(60))
    db.session.rollback()
    later = services.submit_edit(product, same, owner, justification=WHY, ends_on=in_days(60))
    db.session.commit()
    assert later.status == "pending"
    assert "End of the temporary increase changes from" in later.events[0].note
    services.decide(later.id, admin, approve=True)
    db.session.commit()
    provision(later)
    [old, new] = db.session.scalars(select(TemporaryIncrease).order_by(TemporaryIncrease.id))
    assert old.outcome == "superseded" and new.outcome is None
    assert new.ends_on == in_days(60) and new.restore == old.restore
    assert ends.check(in_days(30))["reverted"] == 0

    # Sooner: applied without review.
    product = db.session.get(Product, product.id)
    sooner = services.submit_edit(product, changed(product), owner, ends_on=in_days(5))
    db.session.commit()
    assert sooner.is_auto_approved
    provision(sooner)
    assert temporary.open_for(product.id).ends_on == in_days(5)
    assert ends.check(in_days(5))["reverted"] == 1


def test_keeping_the_quotas_for_good_is_reviewed_and_ends_the_schedule(app, owner, admin):
    product, _ = temporary_increase(owner, admin, days=30)
    keep = services.submit_edit(product, changed(product), owner, justification=WHY, ends_on=None)
    db.session.commit()
    assert keep.status == "pending" and keep.quota_ends_on is None
    services.decide(keep.id, admin, approve=True)
    db.session.commit()
    provision(keep)
    assert temporary.open_for(product.id) is None
    assert ends.check(in_days(30))["reverted"] == 0
    assert prod_cpu(product.id) == BIGGER_CPU


def test_a_quota_changed_since_is_left_as_it_is(app, owner, admin):
    product, _ = temporary_increase(owner, admin, days=30)
    # The team lowers the raised quota to something else meanwhile (the end day stays).
    lower = services.submit_edit(
        product, changed(product, quotas={"prod": {"cpu": "cpu-request-1-limit-2"}}), owner
    )
    db.session.commit()
    provision(lower)
    assert temporary.open_for(product.id).ends_on == in_days(30)
    assert ends.check(in_days(30)) == {"warned": 0, "reverted": 0, "waiting": 0, "changed": 1}
    assert prod_cpu(product.id) == "cpu-request-1-limit-2"


def test_the_granting_admin_sets_the_day_and_the_audit_log_keeps_it(app, owner, admin):
    product = live_product(owner, admin)
    edit = services.submit_edit(
        product, changed(product, quotas={"prod": {"cpu": BIGGER_CPU}}), owner, justification=WHY
    )
    db.session.commit()
    assert edit.quota_ends_on is None
    with pytest.raises(services.InvalidDecision, match="after today"):
        services.decide(edit.id, admin, approve=True, ends_on=temporary.today())
    db.session.rollback()
    services.decide(edit.id, admin, approve=True, ends_on=in_days(14))
    db.session.commit()
    assert db.session.get(Request, edit.id).quota_ends_on == in_days(14)
    decision = db.session.scalar(
        select(AuditEvent).where(
            AuditEvent.action == "decision", AuditEvent.target == f"request #{edit.id}"
        )
    )
    assert f"Quotas raised go back on {in_days(14).isoformat()}." in decision.detail
    provision(edit)
    assert temporary.open_for(product.id).ends_on == in_days(14)


def test_the_grant_form_sets_the_day(app, client, owner, admin):
    product = live_product(owner, admin)
    edit = services.submit_edit(
        product, changed(product, quotas={"prod": {"cpu": BIGGER_CPU}}), owner, justification=WHY
    )
    db.session.commit()
    builders.login(client, admin)
    form = client.get(f"/admin/requests/{edit.id}/grant").get_data(as_text=True)
    assert 'name="ends_on"' in form
    url = f"/admin/requests/{edit.id}/decision"
    bad = builders.post(client, url, {"decision": "approve", "ends_on": "next week"})
    assert bad.status_code == 422
    assert "as a date (YYYY-MM-DD)" in bad.get_data(as_text=True)
    sent = builders.post(client, url, {"decision": "approve", "ends_on": in_days(20).isoformat()})
    assert sent.status_code == 303
    db.session.expire_all()
    assert db.session.get(Request, edit.id).quota_ends_on == in_days(20)


@pytest.mark.parametrize(
    ("day", "quota", "says"),
    [
        (0, BIGGER_CPU, "Choose a day after today"),
        (400, BIGGER_CPU, "lasts at most 365 days"),
        (10, SMALL_CPU, "An end day is for a quota increase"),
    ],
)
def test_the_change_form_refuses_an_end_day_it_cannot_keep(
    app, client, owner, admin, day, quota, says
):
    product = live_product(owner, admin)
    builders.login(client, owner)
    body = form_body(product, **{"prod-cpu": quota, "description": "Counting more salmon."})
    body["ends_on"] = in_days(day).isoformat()
    response = builders.post(client, f"/products/{product.licence_plate}/change", body)
    assert response.status_code == 422
    assert says in response.get_data(as_text=True)
    assert db.session.scalar(select(Request).where(Request.type == "edit")) is None


def test_the_change_form_carries_the_day_to_the_request(app, client, owner, admin):
    product = live_product(owner, admin)
    builders.login(client, owner)
    url = f"/products/{product.licence_plate}/change"
    assert 'name="ends_on"' in client.get(url).get_data(as_text=True)
    body = form_body(product, **{"prod-cpu": BIGGER_CPU, "ends_on": in_days(21).isoformat()})
    check = builders.post(client, url, {k: v for k, v in body.items() if k != "justification"})
    html = check.get_data(as_text=True)
    assert check.status_code == 200 and "Temporary: the quotas raised go back on" in html
    assert f'name="ends_on" value="{in_days(21).isoformat()}"' in html
    sent = builders.post(client, url, {**body, "confirmed": "yes"})
    assert sent.status_code == 303
    edit = db.session.scalar(select(Request).where(Request.type == "edit"))
    assert edit.quota_ends_on == in_days(21) and edit.justification

    # The request page and the product page (once applied) say when the quota goes back.
    assert "the quotas raised go back on" in client.get(f"/requests/{edit.id}").get_data(
        as_text=True
    )
    services.decide(edit.id, admin, approve=True)
    db.session.commit()
    provision(edit)
    page = client.get(f"/products/{product.licence_plate}").get_data(as_text=True)
    assert "Temporary increase: ends on" in page
    assert "prod CPU: back to 0.5 cores, limit 1.5 (now 2 cores, limit 4)" in page
    # The form now holds the day: moving it is a change of its own.
    assert f'value="{in_days(21).isoformat()}"' in client.get(url).get_data(as_text=True)
