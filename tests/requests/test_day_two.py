"""Day two: a product changes and ends only through requests, and its state is always right.

Edits (the diff and the path before submit, automatic approval by the rules table, a super admin
granting other quotas), deletions confirmed by the licence plate, "Request again" after a
rejection, one request per form however often it is sent, and the product page at every step.
The whole loop through the reference provisioner is in ``test_day_two_provisioner.py``.
"""

import re
import threading

import pytest
from sqlalchemy import func, select

from registry import contract
from registry.extensions import db
from registry.notifications import sender
from registry.outbox.models import OutboxEmail, OutboxMessage
from registry.products.models import Product, ProductStatus
from registry.products.services import ContactData, ProductData, live_data
from registry.provisioning import reports as status_reports
from registry.requests import changes, services
from registry.requests.models import Request, RequestEvent, RequestStatus, RequestType
from registry.requests.signals import request_moved
from tests import builders
from tests.builders import report
from tests.notifications.test_mail import received, text_part, to_addresses

S = RequestStatus
P = ProductStatus
BIGGER_CPU = "cpu-request-2-limit-4"
SMALLER_MEMORY = "memory-request-2-limit-4"


# --- helpers --------------------------------------------------------------------------------------


def provision(req: Request) -> None:
    """The provisioner reports every step of ``req`` on each of its clusters."""
    for target in list(req.targets):
        for step in contract.STEPS:
            report(req, step, cluster=target.cluster)


def live_product(owner, admin, **overrides) -> Product:
    """A product whose create request is provisioned: active, with live namespaces."""
    req = builders.submit(owner, **overrides)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    provision(req)
    assert req.product.status == P.ACTIVE
    return req.product


def changed(product: Product, **what) -> ProductData:
    """The live data of ``product`` with some fields changed: ``quotas={"prod": {"cpu": ...}}``,
    ``owner=ContactData(...)``, ``description="..."``."""
    data = ProductData.from_dict(live_data(product))
    for env, kinds in what.pop("quotas", {}).items():
        data.quotas[env].update(kinds)
    for key, value in what.items():
        setattr(data, key, value)
    return data


def form_body(product: Product, **overrides) -> dict:
    """The change form as a browser sends it, filled with the live values, then ``overrides``."""
    live = live_data(product)
    body = {
        "name": live["name"],
        "description": live["description"],
        "ministry": live["ministry"],
    }
    for role, prefix in (
        ("owner", "product_owner"),
        ("primary_lead", "primary_lead"),
        ("secondary_lead", "secondary_lead"),
    ):
        contact = live["contacts"].get(role) or {}
        for key in ("first_name", "last_name", "email"):
            body[f"{prefix}-{key}"] = contact.get(key, "")
    for env, quotas in live["namespaces"].items():
        for kind, option in quotas.items():
            body[f"{env}-{kind}"] = option
    body.update(overrides)
    body.setdefault("justification", "Two more services go live in March.")
    return body


def post_together(clients, url: str, bodies: list[dict]) -> list:
    """Each client POSTs its body to ``url``, all released at the same instant."""
    start = threading.Barrier(len(clients))
    answers = [None] * len(clients)

    def send(i):
        start.wait()
        answers[i] = clients[i].post(url, data=bodies[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return answers


def requests_of(product_id: int) -> list[Request]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(Request).where(Request.product_id == product_id).order_by(Request.id)
        )
    )


def product_status(product_id: int) -> str:
    db.session.expire_all()
    return db.session.get(Product, product_id).status


def page(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())


# --- the product's state, at every step -----------------------------------------------------------


def test_the_product_state_follows_each_kind_of_request_through_every_step(owner, admin):
    req = builders.submit(owner, cluster_name="gold")
    product = req.product
    seen = [product.status]
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    seen.append(product.status)
    report(req, "workflow_started", cluster="gold")
    seen.append(product.status)
    report(req, "failed", "quota service down", cluster="gold")
    seen.append(product.status)
    status_reports.resend(req.id, admin)
    db.session.commit()
    seen.append(product.status)
    provision(req)
    seen.append(product.status)
    assert seen == [
        P.REQUESTED,
        P.BEING_CREATED,
        P.BEING_CREATED,
        P.FAILED,
        P.BEING_CREATED,
        P.ACTIVE,
    ]

    edit = services.submit_edit(
        product,
        changed(product, quotas={"prod": {"cpu": BIGGER_CPU}}),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    assert product.status == P.CHANGE_PENDING
    services.decide(edit.id, admin, approve=True)
    db.session.commit()
    assert product.status == P.CHANGE_APPLYING
    provision(edit)
    assert product.status == P.ACTIVE

    deletion = services.submit_delete(
        product,
        owner,
        product.licence_plate,
        reason="No longer needed: the service moved to the new platform.",
    )
    db.session.commit()
    assert product.status == P.DELETE_PENDING
    services.decide(deletion.id, admin, approve=True)
    db.session.commit()
    assert product.status == P.BEING_DELETED
    provision(deletion)
    assert product.status == P.DELETED


@pytest.mark.parametrize(
    ("ending", "state"),
    [("rejected", P.NOT_CREATED), ("cancelled", P.NOT_CREATED), ("failed", P.FAILED)],
)
def test_a_create_that_did_not_succeed_never_shows_the_product_as_approved_or_deleted(
    client, owner, admin, ending, state
):
    req = builders.submit(owner)
    if ending == "rejected":
        services.decide(req.id, admin, approve=False, comment="Use the existing product.")
    elif ending == "cancelled":
        services.cancel(req.id, owner)
    else:
        services.decide(req.id, admin, approve=True)
        db.session.commit()
        report(req, "workflow_started")
        report(req, "failed", "ArgoCD could not sync.")
    db.session.commit()
    assert product_status(req.product_id) == state

    builders.login(client, owner)
    text = page(client, f"/products/{req.product.licence_plate}")
    assert state.label in text
    assert "Deleted" not in text and "Approved" not in text.split("Requests")[0]
    if ending == "failed":
        assert "New product failed" in text
        assert "Request again" not in text
    else:
        assert f"its request was {ending}" in text
        assert "Request again" in text
    assert "Request a change" not in text


def test_the_product_page_shows_live_values_the_pending_change_and_every_request(
    client, owner, admin
):
    product = live_product(owner, admin, name="Salmon counts")
    edit = services.submit_edit(
        product,
        changed(product, quotas={"prod": {"cpu": BIGGER_CPU}}, description="Counting salmon."),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    builders.login(client, owner)
    text = page(client, f"/products/{product.licence_plate}")

    assert "Change pending" in text
    assert f"Pending change (request #{edit.id})" in text
    # Live: the old description and quota; beside it, the change asked for.
    pending, live = text.split("Pending change", 1)[1].split("What is live")
    assert "Permits for river crossings." in live
    assert "prod CPU 0.5 cores, limit 1.5 2 cores, limit 4 more" in pending
    assert "Description Permits for river crossings. Counting salmon." in pending
    requests = text.split("Requests", 1)[1]
    assert f"#{edit.id} Change Pending approval" in requests
    assert "New product Provisioned" in requests
    # One request at a time: no other can be asked for meanwhile.
    assert "Request a change" not in text
    assert "Another request can be made once it is finished." in text


# --- edits: the form, the diff, the rules ---------------------------------------------------------


def test_the_change_form_is_filled_with_the_live_values(client, owner, admin):
    product = live_product(owner, admin, name="Salmon counts", cluster_name="gold")
    builders.login(client, owner)
    html = client.get(f"/products/{product.licence_plate}/change").get_data(as_text=True)
    assert 'value="Salmon counts"' in html
    assert "Gold Hosting Tier" in html and 'name="cluster"' not in html
    owner_email = product.contact("owner").email
    assert f'value="{owner_email}"' in html
    assert re.search(
        r'name="prod-cpu".*?<option selected value="cpu-request-0.5-limit-1.5"', html, re.S
    )


def test_before_submitting_the_team_sees_the_diff_and_the_path(client, owner, admin):
    product = live_product(owner, admin)
    builders.login(client, owner)
    url = f"/products/{product.licence_plate}/change"

    response = builders.post(client, url, form_body(product, **{"prod-cpu": BIGGER_CPU}))

    assert response.status_code == 200
    text = " ".join(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True)).split())
    assert "Check your change" in text
    assert "prod CPU 0.5 cores, limit 1.5 2 cores, limit 4" in text
    assert "Needs review: prod CPU goes up from 0.5 cores, limit 1.5 to 2 cores, limit 4" in text
    assert requests_of(product.id)[-1].type == RequestType.CREATE  # nothing made yet


def test_the_live_preview_says_which_path_a_change_takes(client, owner, admin):
    product = live_product(owner, admin)
    builders.login(client, owner)
    url = f"/products/{product.licence_plate}/change/preview"
    down = builders.post(client, url, form_body(product, **{"dev-memory": SMALLER_MEMORY}))
    assert "Nothing changed yet" in down.get_data(as_text=True)  # already the smallest
    down = builders.post(client, url, form_body(product, description="New words."))
    assert "Approved automatically" in down.get_data(as_text=True)
    up = builders.post(client, url, form_body(product, **{"test-storage": "storage-16"}))
    assert "Needs review" in up.get_data(as_text=True)
    assert "test storage goes up from 1 GiB to 16 GiB" in up.get_data(as_text=True)


def test_nothing_changed_is_said_and_makes_no_request(client, owner, admin):
    product = live_product(owner, admin)
    builders.login(client, owner)
    response = builders.post(
        client, f"/products/{product.licence_plate}/change", form_body(product, confirmed="yes")
    )
    assert response.status_code == 422
    assert "Nothing was changed" in response.get_data(as_text=True)
    # Sent from the page (HTMX): the form again with the message, which takes the focus.
    response = builders.post(
        client, f"/products/{product.licence_plate}/change", form_body(product), htmx=True
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert html.lstrip().startswith('<form id="change-form"')
    assert "<html" not in html
    assert 'role="alert" tabindex="-1" data-focus>Nothing was changed' in html
    assert len(requests_of(product.id)) == 1


def test_a_second_request_is_refused_with_a_link_to_the_open_one(client, owner, admin):
    product = live_product(owner, admin)
    edit = services.submit_edit(
        product,
        changed(product, quotas={"prod": {"cpu": BIGGER_CPU}}),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    builders.login(client, owner)
    for url in (
        f"/products/{product.licence_plate}/change",
        f"/products/{product.licence_plate}/delete",
    ):
        response = client.get(url)
        assert response.status_code == 409
        html = response.get_data(as_text=True)
        assert "already has an open request" in html
        assert f'href="/requests/{edit.id}"' in html
    response = builders.post(
        client,
        f"/products/{product.licence_plate}/change",
        form_body(product, description="Other words.", confirmed="yes"),
    )
    assert response.status_code == 409
    # Sent from the page (HTMX), the refusal takes the form's place: no page inside the page.
    for step in ({"confirmed": "yes"}, {}):
        response = builders.post(
            client,
            f"/products/{product.licence_plate}/change",
            form_body(product, description="Other words.", **step),
            htmx=True,
        )
        assert response.status_code == 409
        html = response.get_data(as_text=True)
        assert "already has an open request" in html
        assert f'href="/requests/{edit.id}"' in html
        assert "<html" not in html and "<header" not in html and "<footer" not in html
    assert len(requests_of(product.id)) == 2


def test_a_quota_decrease_is_approved_automatically_with_its_rule_on_the_timeline(
    client, owner, admin
):
    product = live_product(
        owner,
        admin,
        quotas={
            env: dict(builders.DEFAULT_QUOTAS, cpu=BIGGER_CPU)
            for env in ("tools", "dev", "test", "prod")
        },
    )
    builders.login(client, owner)
    response = builders.post(
        client,
        f"/products/{product.licence_plate}/change",
        form_body(product, **{"prod-cpu": "cpu-request-1-limit-2"}, confirmed="yes"),
    )
    assert response.status_code == 303
    edit = requests_of(product.id)[-1]
    assert (edit.type, edit.status, edit.decided_by_id) == ("edit", "approved", None)
    assert edit.is_auto_approved and edit.decision_data == edit.requested_data
    [event] = edit.events
    assert (event.from_status, event.to_status, event.actor_id) == (None, "approved", owner.id)
    assert event.note == (
        "Approved automatically, no quota goes up:"
        " prod CPU goes down from 2 cores, limit 4 to 1 core, limit 2."
    )
    text = page(client, f"/requests/{edit.id}")
    assert "Submitted and approved automatically" in text
    assert "Approved automatically" in text and "prod CPU goes down" in text
    # It goes to the provisioner at once, and nobody is asked to review it.
    [message] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.request_id == edit.id))
    assert message.payload["action"] == "edit"
    kinds = set(
        db.session.scalars(select(OutboxEmail.kind).where(OutboxEmail.request_id == edit.id))
    )
    assert kinds == {"approved"}


def test_an_increase_without_measured_usage_waits_for_a_super_admin(owner, admin):
    # No Prometheus is set in the test app: usage cannot be read, so every increase is reviewed,
    # with the reason on the timeline and the (missing) evidence and the justification kept.
    product = live_product(owner, admin)
    data = changed(
        product,
        quotas={"prod": {"cpu": BIGGER_CPU}, "dev": {"memory": "memory-request-4-limit-8"}},
        owner=ContactData("Nia", "New", "nia.new@example.com"),
    )
    edit = services.submit_edit(
        product, data, owner, justification="Two more services go live in March."
    )
    db.session.commit()
    assert edit.status == S.PENDING
    assert edit.events[0].note == (
        "Needs review: dev memory goes up from 2 GiB, limit 4 GiB to 4 GiB, limit 8 GiB;"
        " prod CPU goes up from 0.5 cores, limit 1.5 to 2 cores, limit 4;"
        " measured usage: usage could not be read: no Prometheus is set for the silver cluster."
    )
    assert edit.justification == "Two more services go live in March."
    assert edit.usage_evidence["available"] is False and edit.usage_evidence["passed"] is False
    assert [c["field"] for c in edit.usage_evidence["checks"]] == [
        "namespaces.dev.memory",
        "namespaces.prod.cpu",
    ]
    kinds = set(
        db.session.scalars(select(OutboxEmail.kind).where(OutboxEmail.request_id == edit.id))
    )
    assert kinds == {"received", "awaiting_review"}
    assert not db.session.scalar(
        select(func.count()).select_from(OutboxMessage).where(OutboxMessage.request_id == edit.id)
    )


def test_the_setting_sends_every_change_to_review(app, owner, admin):
    app.config["AUTO_APPROVE_EDITS"] = False
    product = live_product(owner, admin)
    edit = services.submit_edit(
        product,
        changed(product, description="Only words."),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    assert edit.status == S.PENDING
    assert "automatic approval is turned off" in edit.events[0].note


@pytest.mark.parametrize(
    ("what", "needs_review"),
    [
        ({"description": "New words."}, False),
        ({"name": "Renamed"}, False),
        ({"ministry_code": "HLTH"}, False),
        ({"owner": ContactData("Nia", "New", "nia.new@example.com")}, False),
        ({"secondary_lead": ContactData("Sam", "Second", "sam@example.com")}, False),
        ({"quotas": {"tools": {"storage": "storage-2"}}}, True),
        ({"quotas": {"prod": {"cpu": BIGGER_CPU}}, "description": "And words."}, True),
    ],
)
def test_the_rules_table_decides_the_path(owner, admin, what, needs_review):
    product = live_product(owner, admin)
    before = live_data(product)
    after = changed(product, **what).as_dict()
    verdict = changes.assess(changes.diff(before, after))
    assert verdict.needs_review is needs_review
    matched = {changes.rule_for(c).name for c in changes.diff(before, after)}
    assert matched <= {r.name for r in changes.RULES}


def test_a_super_admin_grants_other_quotas_with_a_reason_and_the_team_is_told(client, owner, admin):
    product = live_product(owner, admin)
    edit = services.submit_edit(
        product,
        changed(product, quotas={"prod": {"cpu": "cpu-request-4-limit-8"}}),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    builders.login(client, admin)
    queue = page(client, "/admin/queue")
    assert "Change" in queue
    assert "prod CPU 0.5 cores, limit 1.5 4 cores, limit 8 more" in queue

    url = f"/admin/requests/{edit.id}/decision"
    grant = {"decision": "approve", "quota-prod-cpu": BIGGER_CPU}
    refused = builders.post(client, url, grant, htmx=True)
    assert refused.status_code == 422, refused.get_data(as_text=True)
    body = refused.get_data(as_text=True)
    assert "Say why the granted quotas differ" in body
    # The grant form comes back open with what was chosen, not what was asked.
    assert '<details class="grant" open>' in body
    assert f'<option value="{BIGGER_CPU}" selected>' in body
    assert 'option value="cpu-request-4-limit-8" selected' not in body
    # Without JavaScript, the queue comes back the same way.
    whole = builders.post(client, url, grant)
    assert whole.status_code == 422
    assert f'<option value="{BIGGER_CPU}" selected>' in whole.get_data(as_text=True)

    approved = builders.post(client, url, {**grant, "comment": "4 cores once load tests show it."})
    assert approved.status_code == 303
    edit = requests_of(product.id)[-1]
    assert edit.requested_data["namespaces"]["prod"]["cpu"] == "cpu-request-4-limit-8"
    assert edit.decision_data["namespaces"]["prod"]["cpu"] == BIGGER_CPU
    [message] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.request_id == edit.id))
    prod = message.payload["namespaces"][3]
    assert prod["quota"]["cpu"] == BIGGER_CPU
    assert prod["quotas"]["cpu"] == {"requests": 2, "limits": 4}

    text = page(client, f"/requests/{edit.id}")
    assert "Live when asked Asked for Granted" in text
    assert "prod CPU 0.5 cores, limit 1.5 4 cores, limit 8 2 cores, limit 4" in text
    [email] = db.session.scalars(
        select(OutboxEmail).where(OutboxEmail.request_id == edit.id, OutboxEmail.kind == "approved")
    )
    assert email.subject.startswith("[Product Registry] Change approved:")
    assert (
        "prod CPU: 0.5 cores, limit 1.5 -> 4 cores, limit 8 (granted: 2 cores, limit 4)"
        in email.body_text
    )

    provision(edit)
    assert {ns.environment: ns.cpu for ns in product.namespaces}["prod"] == BIGGER_CPU
    # A done change reads "Applied" wherever it is listed, as on its product's page.
    applied = '<span class="badge badge-provisioned">Applied</span>'
    for url in (f"/requests/{edit.id}", "/history", f"/products/{product.licence_plate}"):
        assert applied in client.get(url).get_data(as_text=True), url


def test_a_provisioned_edit_becomes_the_live_product(owner, admin):
    product = live_product(
        owner, admin, secondary_lead=ContactData("Sam", "Second", "sam@example.com")
    )
    data = changed(
        product,
        name="Salmon counts",
        ministry_code="HLTH",
        owner=ContactData("Nia", "New", "Nia.New@Example.com"),
        secondary_lead=None,
        quotas={"test": {"storage": "storage-1", "memory": SMALLER_MEMORY}},
    )
    edit = services.submit_edit(
        product, data, owner, justification="Two more services go live in March."
    )
    db.session.commit()
    assert edit.status == S.APPROVED
    assert product.name != "Salmon counts"  # not live until the provisioner says so
    provision(edit)
    db.session.expire_all()
    product = db.session.get(Product, product.id)
    assert (product.name, product.ministry_code, product.status) == (
        "Salmon counts",
        "HLTH",
        "active",
    )
    assert {c.role: c.email for c in product.contacts} == {
        "owner": "nia.new@example.com",
        "primary_lead": product.contact("primary_lead").email,
    }


def test_a_contact_change_tells_the_old_and_the_new_contact(mail_app, smtp_sink, owner, admin):
    product = live_product(owner, admin)
    old_owner = product.contact("owner").email
    sender.deliver_due()
    smtp_sink.messages.clear()

    edit = services.submit_edit(
        product,
        changed(product, owner=ContactData("Nia", "New", "nia.new@example.com")),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    assert edit.status == S.APPROVED  # contacts are the team's own: no review
    [message] = db.session.scalars(select(OutboxMessage).where(OutboxMessage.request_id == edit.id))
    assert message.payload["isContactChanged"] is True
    provision(edit)

    assert sender.deliver_due() == 2
    mails = {m["Subject"]: m for m in received(smtp_sink)}
    for subject in ("Change approved", "Your change is applied"):
        [mail] = [m for s, m in mails.items() if subject in s]
        assert {old_owner, "nia.new@example.com", owner.email} <= to_addresses(mail)
        assert "Product owner: Pat Owner <" in text_part(mail)
        assert "-> Nia New <nia.new@example.com>" in text_part(mail)


# --- deletions ------------------------------------------------------------------------------------


def test_a_deletion_needs_the_plate_typed_and_a_super_admin(client, owner, admin):
    product = live_product(owner, admin)
    builders.login(client, owner)
    url = f"/products/{product.licence_plate}/delete"
    assert "Type the licence plate" in client.get(url).get_data(as_text=True)

    wrong = builders.post(client, url, {"confirmation": "abc", "reason": "Moved on."})
    assert wrong.status_code == 422
    assert f"Type the licence plate {product.licence_plate} exactly" in wrong.get_data(as_text=True)
    assert len(requests_of(product.id)) == 1

    right = builders.post(
        client, url, {"confirmation": f" {product.licence_plate.upper()} ", "reason": "Moved on."}
    )
    assert right.status_code == 303
    deletion = requests_of(product.id)[-1]
    assert (deletion.type, deletion.status) == ("delete", "pending")
    assert product_status(product.id) == P.DELETE_PENDING

    builders.post(client, "/logout")
    builders.login(client, admin)
    assert "Asks to delete the product" in page(client, "/admin/queue")


def test_a_deleted_product_is_read_only_and_its_plate_is_kept(client, owner, admin):
    product = live_product(owner, admin)
    deletion = services.submit_delete(
        product,
        owner,
        product.licence_plate,
        reason="No longer needed: the service moved to the new platform.",
    )
    db.session.commit()
    services.decide(deletion.id, admin, approve=True)
    db.session.commit()
    [message] = db.session.scalars(
        select(OutboxMessage).where(OutboxMessage.request_id == deletion.id)
    )
    assert message.payload["action"] == "delete"
    provision(deletion)
    assert product_status(product.id) == P.DELETED

    builders.login(client, owner)
    text = page(client, f"/products/{product.licence_plate}")
    assert "This product was deleted" in text and "read-only" in text
    assert "Request a change" not in text and "Request deletion" not in text
    for url in ("change", "delete", "request-again"):
        assert client.get(f"/products/{product.licence_plate}/{url}").status_code == 409
    with pytest.raises(services.WrongState):
        services.submit_edit(
            product,
            changed(product, description="Back?"),
            owner,
            justification="Two more services go live in March.",
        )
    assert (
        db.session.scalar(
            select(func.count())
            .select_from(Product)
            .where(Product.licence_plate == product.licence_plate)
        )
        == 1
    )


# --- request again --------------------------------------------------------------------------------


def test_request_again_starts_from_the_rejected_request_and_keeps_the_plate(client, owner, admin):
    req = builders.submit(owner, name="Fish ladders")
    services.decide(req.id, admin, approve=False, comment="Say which ministry pays for it.")
    db.session.commit()
    plate = req.product.licence_plate
    builders.login(client, owner)
    # Never built: its page says when it was asked for, not that it was created.
    product_page = client.get(f"/products/{plate}").get_data(as_text=True)
    assert "<dt>First requested</dt>" in product_page and "<dt>Created</dt>" not in product_page

    form = client.get(f"/products/{plate}/request-again").get_data(as_text=True)
    assert 'value="Fish ladders"' in form
    assert "Say which ministry pays for it." in form

    body = builders.form_data(name="Fish ladders", ministry="FLNR")
    response = builders.post(client, f"/products/{plate}/request-again", body)
    assert response.status_code == 303
    _, again = requests_of(req.product_id)
    assert (again.type, again.status, again.requested_data["ministry"]) == (
        "create",
        "pending",
        "FLNR",
    )
    product = db.session.get(Product, req.product_id)
    assert (product.licence_plate, product.ministry_code, product.status) == (
        plate,
        "FLNR",
        "requested",
    )
    assert db.session.scalar(select(func.count()).select_from(Product)) == 1

    services.decide(again.id, admin, approve=True)
    db.session.commit()
    provision(again)
    assert product_status(product.id) == P.ACTIVE


def test_request_again_is_only_for_a_product_that_was_not_created(client, owner, admin):
    product = live_product(owner, admin)
    with pytest.raises(services.WrongState, match="only a product that was not created"):
        services.submit_again(product, builders.product_data(), owner)


# --- one request per form -------------------------------------------------------------------------


def test_the_same_form_sent_twice_makes_one_product(client, owner):
    builders.login(client, owner)
    html = client.get("/products/new").get_data(as_text=True)
    key = re.search(r'name="submission_key" type="hidden" value="([0-9a-f]{32})"', html).group(1)
    body = builders.form_data(submission_key=key)
    first = builders.post(client, "/products/new", dict(body))
    second = builders.post(client, "/products/new", dict(body))
    assert first.status_code == second.status_code == 303
    assert first.headers["Location"] == second.headers["Location"]
    assert db.session.scalar(select(func.count()).select_from(Product)) == 1


def test_two_identical_submits_at_the_same_instant_make_one_product(app, owner):
    """Two browsers' worth of the same POST, released together, many times over."""
    from tests.conftest import FreshContextClient

    app.test_client_class = FreshContextClient
    for attempt in range(5):
        clients = [app.test_client() for _ in range(2)]
        for c in clients:
            builders.login(c, owner)
        body = builders.form_data(submission_key=f"{attempt:032x}")
        bodies = [dict(body, csrf_token=builders.csrf_token(c)) for c in clients]
        answers = post_together(clients, "/products/new", bodies)
        assert [a.status_code for a in answers] == [303, 303], [
            a.get_data(as_text=True)[:500] for a in answers
        ]
        assert answers[0].headers["Location"] == answers[1].headers["Location"]
    db.session.expire_all()
    assert db.session.scalar(select(func.count()).select_from(Product)) == 5
    assert db.session.scalar(select(func.count()).select_from(Request)) == 5


def test_two_different_changes_at_the_same_instant_make_one_request(app, owner, admin):
    product = live_product(owner, admin)
    plate = product.licence_plate
    from tests.conftest import FreshContextClient

    app.test_client_class = FreshContextClient
    clients = [app.test_client() for _ in range(2)]
    for c in clients:
        builders.login(c, owner)
    bodies = [
        dict(
            form_body(product, description=f"Version {i}.", confirmed="yes"),
            csrf_token=builders.csrf_token(c),
        )
        for i, c in enumerate(clients)
    ]
    answers = post_together(clients, f"/products/{plate}/change", bodies)
    assert sorted(a.status_code for a in answers) == [303, 409]
    assert len(requests_of(product.id)) == 2


# --- the lifecycle's listeners --------------------------------------------------------------------


def test_every_move_is_sent_on_the_signal_the_features_listen_to(owner, admin):
    seen = []

    def listener(request, event):
        seen.append((request.id, event.from_status, event.to_status))

    request_moved.connect(listener)
    try:
        req = builders.submit(owner)
        services.decide(req.id, admin, approve=True)
        db.session.commit()
    finally:
        request_moved.disconnect(listener)
    assert seen == [(req.id, None, "pending"), (req.id, "pending", "approved")]


def test_an_edit_decided_without_a_super_admin_is_refused_for_a_create(owner):
    req = builders.submit(owner)
    from sqlalchemy import update
    from sqlalchemy.exc import IntegrityError

    from registry.timeutil import utcnow

    with pytest.raises(IntegrityError):
        db.session.execute(
            update(Request)
            .where(Request.id == req.id)
            .values(status="approved", decided_at=utcnow())
        )
        db.session.flush()
    db.session.rollback()
    events = db.session.scalar(select(func.count()).select_from(RequestEvent))
    assert events == 1


def test_all_requests_filters_by_kind(client, owner, admin, support):
    product = live_product(owner, admin, name="Heron nests")
    edit = services.submit_edit(
        product,
        changed(product, description="Nests by the river."),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    builders.login(client, support)
    text = page(client, "/history?type=edit")
    assert "1 request" in text
    assert f"#{edit.id} Heron nests" in text and "Change" in text
    assert "2 requests" in page(client, "/history")
    assert "1 request" in page(client, "/history?type=create")


def test_a_new_contact_can_read_the_request_that_names_them(client, owner, admin):
    product = live_product(owner, admin)
    newcomer = builders.make_user(email="nia.new@example.com", name="Nia New")
    stranger = builders.make_user(email="someone@example.com", name="Some One")
    edit = services.submit_edit(
        product,
        changed(
            product,
            owner=ContactData("Nia", "New", "nia.new@example.com"),
            quotas={"prod": {"cpu": BIGGER_CPU}},
        ),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    builders.login(client, newcomer)
    assert client.get(f"/requests/{edit.id}").status_code == 200
    # Named by the change, not yet a contact: the product itself waits until it is applied.
    assert client.get(f"/products/{product.licence_plate}").status_code == 404
    builders.post(client, "/logout")
    builders.login(client, stranger)
    assert client.get(f"/requests/{edit.id}").status_code == 404


def test_all_requests_finds_by_plate_folded_name_and_contact_email(client, owner, admin, support):
    sante = builders.submit(owner, name="Santé publique")
    other = builders.submit(owner, name="Ferry schedule")
    builders.login(client, support)
    assert f"#{sante.id} Santé publique" in page(client, "/history?q=SANTE")
    assert "Ferry schedule" not in page(client, "/history?q=sante")
    assert f"#{other.id} Ferry" in page(client, f"/history?q={other.product.licence_plate}")
    email = other.product.contact("primary_lead").email
    text = page(client, f"/history?q={email.upper()}")
    assert f"#{other.id} Ferry" in text and "Santé" not in text
    assert "No request matches" in page(client, "/history?q=100%25_")


def test_all_requests_pages_newest_first_and_counts_no_further_than_its_limit(
    app, client, owner, support, monkeypatch
):
    from registry.requests import queries

    monkeypatch.setattr(queries, "HISTORY_COUNT_LIMIT", 5)
    app.config["PAGE_SIZE"] = 2
    made = [builders.submit(owner, name=f"Paged {n}").id for n in range(7)]
    builders.login(client, support)
    pages = [page(client, f"/history?page={n}") for n in (1, 2, 4)]
    assert f"#{made[6]} Paged 6" in pages[0] and f"#{made[5]} Paged 5" in pages[0]
    assert f"#{made[4]} Paged 4" in pages[1] and f"#{made[3]} Paged 3" in pages[1]
    assert f"#{made[0]} Paged 0" in pages[2] and "Paged 1 " not in pages[2]
    assert "More than 5 requests" in pages[0]
    assert "Page 1 of more than 3" in pages[0]
