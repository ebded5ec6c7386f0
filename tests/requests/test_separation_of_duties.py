"""Separation of duties: nobody decides a request of a product they are a contact of, nor one
they submitted. The queue says why a super admin has no buttons for such an item."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from registry.audit.models import AuditEvent
from registry.extensions import db
from registry.products.models import ProductContactHistory
from registry.products.services import ContactData
from registry.requests import services
from registry.requests.models import Request, RequestStatus
from tests import builders
from tests.requests.test_day_two import BIGGER_CPU, changed, live_product, provision


def status_of(request_id: int) -> str:
    status = db.session.scalar(select(Request.status).where(Request.id == request_id))
    db.session.rollback()
    return status


def audit_count() -> int:
    count = db.session.scalar(select(func.count()).select_from(AuditEvent))
    db.session.rollback()
    return count


def queue_item(client, request_id: int) -> str:
    page = client.get("/admin/queue").get_data(as_text=True)
    match = re.search(
        rf'<article class="queue-item" id="queue-request-{request_id}">(.*?)</article>',
        page,
        re.S,
    )
    assert match, f"request {request_id} is not in the queue"
    return match.group(1)


def has_buttons(item: str) -> bool:
    return 'class="approve"' in item and "Reject</button>" in item


@pytest.fixture
def owned_by_admin(owner, admin):
    """A pending request whose product names the super admin as its product owner."""
    return builders.submit(owner, owner=ContactData("Ada", "Admin", admin.email))


def test_a_super_admin_who_is_the_product_owner_cannot_decide(client, admin, owned_by_admin):
    builders.login(client, admin)
    before = audit_count()

    for body in ({"decision": "approve"}, {"decision": "reject", "comment": "No."}):
        response = builders.post(client, f"/admin/requests/{owned_by_admin.id}/decision", body)
        assert response.status_code == 403
        assert "You are the product owner of this product" in response.get_data(as_text=True)
    htmx = builders.post(
        client, f"/admin/requests/{owned_by_admin.id}/decision", {"decision": "approve"}, htmx=True
    )
    assert htmx.status_code == 403

    assert status_of(owned_by_admin.id) == RequestStatus.PENDING
    assert audit_count() == before  # no decision, so nothing in the audit log either


def test_the_queue_says_why_a_contact_has_no_buttons(client, owner, admin, owned_by_admin):
    other = builders.submit(owner)
    builders.login(client, admin)

    item = queue_item(client, owned_by_admin.id)
    assert not has_buttons(item)
    assert "You are the product owner of this product: another super admin must decide it." in item
    assert has_buttons(queue_item(client, other.id))  # the rest of the queue is theirs to decide


def test_another_super_admin_decides_it(client, other_admin, owned_by_admin):
    builders.login(client, other_admin)
    assert has_buttons(queue_item(client, owned_by_admin.id))
    response = builders.post(
        client, f"/admin/requests/{owned_by_admin.id}/decision", {"decision": "approve"}
    )
    assert response.status_code == 303
    assert status_of(owned_by_admin.id) == RequestStatus.APPROVED


def test_a_technical_lead_is_matched_by_email_whatever_its_case(client, owner, admin):
    req = builders.submit(owner, secondary_lead=ContactData("Ada", "Admin", "ADMIN@example.com"))
    builders.login(client, admin)
    item = queue_item(client, req.id)
    assert "You are the secondary technical lead of this product" in item
    response = builders.post(client, f"/admin/requests/{req.id}/decision", {"decision": "approve"})
    assert response.status_code == 403
    assert status_of(req.id) == RequestStatus.PENDING


def test_a_contact_named_only_in_the_request_cannot_decide_it(client, owner, admin, other_admin):
    # The live product does not name the admin; the change asks to make them its primary lead.
    product = live_product(owner, other_admin)
    data = changed(
        product,
        primary_lead=ContactData("Ada", "Admin", admin.email),
        quotas={"prod": {"cpu": BIGGER_CPU}},  # needs review
    )
    req = services.submit_edit(
        product, data, owner, justification="Two more services go live in March."
    )
    db.session.commit()
    assert req.is_pending
    assert admin.email not in product.contact_emails

    builders.login(client, admin)
    assert "You are the primary technical lead of this product" in queue_item(client, req.id)
    response = builders.post(client, f"/admin/requests/{req.id}/decision", {"decision": "approve"})
    assert response.status_code == 403
    assert status_of(req.id) == RequestStatus.PENDING


def test_with_separate_duties_off_a_contact_decides(app, client, admin, owned_by_admin):
    app.config["SEPARATE_DUTIES"] = False
    builders.login(client, admin)
    item = queue_item(client, owned_by_admin.id)
    assert has_buttons(item)
    assert "You are the product owner" not in item

    response = builders.post(
        client, f"/admin/requests/{owned_by_admin.id}/decision", {"decision": "approve"}
    )

    assert response.status_code == 303
    assert status_of(owned_by_admin.id) == RequestStatus.APPROVED


def test_nobody_decides_their_own_request_even_with_separate_duties_off(app, client, admin):
    app.config["SEPARATE_DUTIES"] = False
    req = builders.submit(admin)
    builders.login(client, admin)
    assert "You submitted this request" in queue_item(client, req.id)
    response = builders.post(client, f"/admin/requests/{req.id}/decision", {"decision": "approve"})
    assert response.status_code == 403
    assert status_of(req.id) == RequestStatus.PENDING


def test_a_pending_request_page_leads_a_super_admin_to_its_place_in_the_queue(
    app, client, owner, admin, owned_by_admin
):
    app.config["PAGE_SIZE"] = 2
    second, third = builders.submit(owner), builders.submit(owner)
    db.session.commit()
    builders.login(client, admin)
    page = client.get(f"/requests/{third.id}").get_data(as_text=True)
    assert f'href="/admin/queue?page=2#queue-request-{third.id}" id="decide-link"' in page
    page = client.get(f"/requests/{second.id}").get_data(as_text=True)
    assert f'href="/admin/queue#queue-request-{second.id}" id="decide-link"' in page
    # Not one this admin may decide: why, instead of the way to the buttons.
    page = client.get(f"/requests/{owned_by_admin.id}").get_data(as_text=True)
    assert 'id="decide-link"' not in page
    assert "You are the product owner of this product" in page
    # Decided, or read by its team: no way to the queue.
    services.decide(second.id, admin, approve=True)
    db.session.commit()
    assert 'id="decide-link"' not in client.get(f"/requests/{second.id}").get_data(as_text=True)
    team = app.test_client()
    builders.login(team, owner)
    assert 'id="decide-link"' not in team.get(f"/requests/{third.id}").get_data(as_text=True)


# --- a hand in the product: created it, asked for something on it, was its contact -----------


def built(requester, decider, **contacts):
    """A live product asked for by ``requester``, approved by ``decider`` and provisioned."""
    req = builders.submit(requester, **contacts)
    services.decide(req.id, decider, approve=True)
    db.session.commit()
    provision(req)
    return req.product


def increase(product, requester) -> Request:
    """A pending quota increase of ``product`` (it needs a super admin's decision)."""
    req = services.submit_edit(
        product,
        changed(product, quotas={"prod": {"cpu": BIGGER_CPU}}),
        requester,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    assert req.is_pending
    return req


def refused(client, req: Request, why: str) -> None:
    assert why in queue_item(client, req.id)
    response = builders.post(client, f"/admin/requests/{req.id}/decision", {"decision": "approve"})
    assert response.status_code == 403 and why in response.get_data(as_text=True)
    assert status_of(req.id) == RequestStatus.PENDING


def test_a_super_admin_who_created_a_product_cannot_approve_its_increase(
    client, owner, admin, other_admin
):
    # The admin asked for the product for a team (which then owns it); another admin built it.
    product = built(admin, other_admin, owner=ContactData("Pat", "Owner", owner.email))
    assert admin.email not in product.contact_emails
    req = increase(product, owner)

    builders.login(client, admin)
    refused(client, req, "You created this product: another super admin must decide it.")


def test_a_super_admin_who_handed_the_product_on_cannot_approve_the_next_increase(
    client, owner, admin, other_admin
):
    # The admin was the product owner and replaced themself through an automatic contact change.
    product = built(owner, other_admin, owner=ContactData("Ada", "Admin", admin.email))
    handover = services.submit_edit(
        product,
        changed(product, owner=ContactData("Pat", "Owner", owner.email)),
        admin,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    assert not handover.is_pending  # contact changes are approved automatically
    provision(handover)
    assert admin.email not in product.contact_emails
    req = increase(product, owner)

    builders.login(client, admin)
    refused(client, req, f"You asked for a change to this product (request #{handover.id})")


def test_a_past_contact_cannot_decide_within_the_period_and_may_after_it(
    app, client, owner, admin, other_admin
):
    product = live_product(
        owner, other_admin, secondary_lead=ContactData("Ada", "Admin", admin.email)
    )
    # The team takes the admin off the product; the admin asked for nothing on it.
    handover = services.submit_edit(
        product,
        changed(product, secondary_lead=None),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    provision(handover)
    req = increase(product, owner)
    builders.login(client, admin)
    refused(client, req, "You were the secondary technical lead of this product")

    # The history keeps when the role ended; once the period has passed, the admin may decide.
    ended = db.session.scalar(
        select(ProductContactHistory).where(ProductContactHistory.user_id == admin.id)
    )
    ended.ended_at -= timedelta(days=app.config["SEPARATE_DUTIES_DAYS"] + 1)
    ended.started_at -= timedelta(days=app.config["SEPARATE_DUTIES_DAYS"] + 2)
    db.session.commit()
    assert has_buttons(queue_item(client, req.id))
    response = builders.post(client, f"/admin/requests/{req.id}/decision", {"decision": "approve"})
    assert response.status_code == 303
