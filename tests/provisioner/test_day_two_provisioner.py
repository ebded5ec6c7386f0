"""Day two through the whole loop: the registry's relay and bridge, a real nats-server, and the
reference provisioner writing a real git repository.

A quota decrease applies without review and its diff is in the GitOps history; an increase waits
for a super admin, then applies; a deletion removes the manifests from ``main``; "Request again"
after a rejection reaches provisioned on the same plate. Every message of an edit and a delete
passes the same contract check as a create's.
"""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from registry import contract
from registry.extensions import db
from registry.products.models import Product, ProductStatus
from registry.products.services import ContactData
from registry.requests import services
from registry.requests.models import Request
from tests import builders
from tests.provisioner.test_provisioner import (
    files_on_main,
    git,
    stream_messages,
    wait_for,
    workflow_commits,
    yaml_on_main,
)
from tests.requests.test_day_two import BIGGER_CPU, changed, provision
from tests.support import eventually

ENVS = ("tools", "dev", "test", "prod")
SUBJECT = "registry_project_provisioning_{}"


def provisioned_product(owner, admin, **overrides) -> Product:
    req = builders.submit(owner, **overrides)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    wait_for(req.id, "provisioned")
    db.session.expire_all()
    product = db.session.get(Product, req.product_id)
    assert product.status == ProductStatus.ACTIVE
    return product


def product_of(product_id: int) -> Product:
    db.session.rollback()
    db.session.expire_all()
    return db.session.get(Product, product_id)


def test_a_quota_decrease_applies_without_review_and_its_diff_is_in_git(
    provisioner, gitops, nats_app, nats_server, owner, admin
):
    big = dict(builders.DEFAULT_QUOTAS, cpu=BIGGER_CPU)
    product = provisioned_product(owner, admin, quotas={env: dict(big) for env in ENVS})
    plate, product_id = product.licence_plate, product.id
    [create] = stream_messages(nats_app, nats_server.url, SUBJECT.format("silver"))
    [create_commit] = workflow_commits(gitops, create["workflow"])

    edit = services.submit_edit(
        product,
        changed(product, quotas={"prod": {"cpu": "cpu-request-1-limit-2"}}),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    assert edit.is_auto_approved
    wait_for(edit.id, "provisioned")

    [_, message] = stream_messages(nats_app, nats_server.url, SUBJECT.format("silver"))
    assert message["action"] == "edit"
    assert message["workflow"] == f"silver-{plate}-{edit.id}"
    [edit_commit] = workflow_commits(gitops, message["workflow"])
    path = f"silver/{plate}/{plate}-prod/resourcequotas.yaml"
    diff = git(gitops, "diff", create_commit, edit_commit)
    assert git(gitops, "diff", "--name-only", create_commit, edit_commit).splitlines() == [path]
    assert re.search(r'^-\s+requests\.cpu: "2"$', diff, re.M)
    assert re.search(r'^\+\s+requests\.cpu: "1"$', diff, re.M)
    assert yaml_on_main(gitops, path)[0]["spec"]["hard"]["limits.cpu"] == "2"

    product = product_of(product_id)
    assert product.status == ProductStatus.ACTIVE
    assert {ns.environment: ns.cpu for ns in product.namespaces}["prod"] == "cpu-request-1-limit-2"


def test_a_quota_increase_waits_for_review_then_applies(
    provisioner, gitops, nats_app, nats_server, owner, admin
):
    product = provisioned_product(owner, admin)
    plate, product_id = product.licence_plate, product.id
    edit = services.submit_edit(
        product,
        changed(product, quotas={"dev": {"storage": "storage-16"}}),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    assert edit.status == "pending"
    assert product_of(product_id).status == ProductStatus.CHANGE_PENDING
    assert len(stream_messages(nats_app, nats_server.url, SUBJECT.format("silver"))) == 1

    services.decide(edit.id, admin, approve=True)
    db.session.commit()
    wait_for(edit.id, "provisioned")
    path = f"silver/{plate}/{plate}-dev/resourcequotas.yaml"
    storage = yaml_on_main(gitops, path)[1]["spec"]["hard"]
    assert storage["requests.storage"] == "16Gi"
    assert product_of(product_id).status == ProductStatus.ACTIVE


def test_a_confirmed_and_approved_deletion_removes_the_manifests_and_keeps_the_product(
    provisioner, gitops, nats_app, nats_server, owner, admin
):
    product = provisioned_product(owner, admin, cluster_name="gold")
    plate, product_id = product.licence_plate, product.id
    assert files_on_main(gitops, f"gold/{plate}") and files_on_main(gitops, f"golddr/{plate}")

    deletion = services.submit_delete(
        product, owner, plate, reason="No longer needed: the service moved to the new platform."
    )
    db.session.commit()
    services.decide(deletion.id, admin, approve=True)
    db.session.commit()
    wait_for(deletion.id, "provisioned")

    for cluster in ("gold", "golddr"):
        assert files_on_main(gitops, f"{cluster}/{plate}") == []
        assert files_on_main(gitops, f"acs/{cluster}/{plate}.yaml") == []
    product = product_of(product_id)
    assert product.status == ProductStatus.DELETED
    assert product.licence_plate == plate  # kept, so never reused
    with pytest.raises(services.WrongState):
        services.submit_delete(
            product, owner, plate, reason="No longer needed: the service moved to the new platform."
        )


def test_request_again_after_a_rejection_reaches_provisioned_on_the_same_plate(
    provisioner, gitops, nats_app, nats_server, owner, admin
):
    first = builders.submit(owner, name="Fish ladders")
    services.decide(first.id, admin, approve=False, comment="Ask for the test namespace too.")
    db.session.commit()
    product = first.product
    plate = product.licence_plate
    assert product.status == ProductStatus.NOT_CREATED

    again = services.submit_again(product, builders.product_data(name="Fish ladders"), owner)
    db.session.commit()
    services.decide(again.id, admin, approve=True)
    db.session.commit()
    wait_for(again.id, "provisioned")

    [message] = stream_messages(nats_app, nats_server.url, SUBJECT.format("silver"))
    assert (message["licencePlate"], message["action"]) == (plate, "create")
    assert message["workflow"] == f"silver-{plate}-{again.id}"
    assert files_on_main(gitops, f"silver/{plate}")
    assert product_of(product.id).status == ProductStatus.ACTIVE


@pytest.mark.parametrize("action", ["create", "edit", "delete"])
def test_every_kind_of_message_passes_the_contract_check(
    nats_app, nats_server, nats_worker, owner, admin, action
):
    """The relay publishes what the contract says, for gold on both clusters, whatever the kind."""
    req = builders.submit(owner, cluster_name="gold")
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    product = req.product
    if action != "create":
        provision(req)
        if action == "edit":
            data = changed(product, owner=ContactData("Nia", "New", "nia@example.com"))
            req = services.submit_edit(
                product, data, owner, justification="Two more services go live in March."
            )
        else:
            req = services.submit_delete(
                product,
                owner,
                product.licence_plate,
                reason="No longer needed: the service moved to the new platform.",
            )
            db.session.commit()
            services.decide(req.id, admin, approve=True)
        db.session.commit()
    nats_worker(bridge=False)

    def published():
        found = [
            m
            for cluster in ("gold", "golddr")
            for m in stream_messages(nats_app, nats_server.url, SUBJECT.format(cluster))
            if m["workflow"].endswith(f"-{req.id}")
        ]
        return found if len(found) == 2 else None

    messages = eventually(published)
    for message in messages:
        assert contract.validate_provisioning_message(message) == []
        assert message["action"] == action
        assert message["profile_id"] == product.id
        assert message["workflow"] == (
            f"{message['cluster_name']}-{product.licence_plate}-{req.id}"
        )
        assert message["isContactChanged"] is (action == "edit")
    assert {m["cluster_name"] for m in messages} == {"gold", "golddr"}
    request = db.session.get(Request, req.id)
    owners = [c["email"] for c in messages[0]["contacts"] if c["role"] == "owner"]
    assert owners == [request.granted_data["contacts"]["owner"]["email"]]


def test_a_temporary_increase_goes_back_through_the_provisioner_on_its_day(
    provisioner, gitops, nats_app, nats_server, owner, admin
):
    """The clock is the day handed to the check: no sleep, no setting of the wall clock."""
    from registry.capacity import ends
    from registry.requests import temporary

    product = provisioned_product(owner, admin)
    plate, product_id = product.licence_plate, product.id
    path = f"silver/{plate}/{plate}-prod/resourcequotas.yaml"
    until = temporary.today() + timedelta(days=7)
    edit = services.submit_edit(
        product,
        changed(product, quotas={"prod": {"cpu": BIGGER_CPU}}),
        owner,
        justification="A load test of the spring release.",
        ends_on=until,
    )
    db.session.commit()
    services.decide(edit.id, admin, approve=True)
    db.session.commit()
    wait_for(edit.id, "provisioned")
    assert yaml_on_main(gitops, path)[0]["spec"]["hard"]["limits.cpu"] == "4"

    db.session.rollback()
    assert ends.check(until) == {"warned": 0, "reverted": 1, "waiting": 0, "changed": 0}
    back = db.session.scalars(
        select(Request).where(Request.product_id == product_id).order_by(Request.id.desc())
    ).first()
    assert back.requested_by.is_registry and back.is_auto_approved
    wait_for(back.id, "provisioned")
    assert yaml_on_main(gitops, path)[0]["spec"]["hard"]["limits.cpu"] == "1.5"
    product = product_of(product_id)
    assert product.status == ProductStatus.ACTIVE
    assert {ns.environment: ns.cpu for ns in product.namespaces}["prod"] == (
        builders.DEFAULT_QUOTAS["cpu"]
    )
    # The edit message says who asked: the registry itself, in its own name.
    messages = stream_messages(nats_app, nats_server.url, SUBJECT.format("silver"))
    assert messages[-1]["workflow"] == f"silver-{plate}-{back.id}"


def test_the_cluster_state_matches_what_the_provisioner_wrote(
    provisioner, gitops, nats_app, nats_server, owner, admin, client
):
    """Two products provisioned through NATS and the reference provisioner: the state endpoint
    names each of their namespaces with the quotas their ResourceQuota holds on GitOps main."""
    from registry.api import tokens
    from registry.api.models import Access, Scope

    big = dict(builders.DEFAULT_QUOTAS, cpu=BIGGER_CPU)
    products = [
        provisioned_product(owner, admin),
        provisioned_product(owner, admin, quotas={env: dict(big) for env in ENVS}),
    ]
    _, secret = tokens.create("gitops", Scope.ALL, Access.READ, admin)
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    state = client.get("/api/v1/clusters/silver/state", headers=headers)
    assert state.status_code == 200
    by_plate = {p["licence_plate"]: p for p in state.json["products"]}
    assert set(by_plate) == {p.licence_plate for p in products}
    for plate, product in by_plate.items():
        for ns in product["namespaces"]:
            hard = yaml_on_main(gitops, f"silver/{plate}/{ns['name']}/resourcequotas.yaml")[0]
            cores = ns["quotas"]["cpu"].split("-")[2]
            assert hard["spec"]["hard"]["requests.cpu"] == cores, (ns["name"], hard)
    again = client.get("/api/v1/clusters/silver/state",
                       headers={**headers, "If-None-Match": state.headers["ETag"]})  # fmt: skip
    assert again.status_code == 304
