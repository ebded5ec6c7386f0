"""The whole loop against the reference provisioner: a real nats-server, the registry's relay and
bridge, and ``ProvisionerWorker`` writing a real git repository.

An approval reaches "provisioned" with every step on the timeline; the GitOps repository's
``main`` holds the merged branch of the workflow with manifests that are valid Kubernetes
objects carrying what docs/domain.md lists; gold waits for golddr; an injected failure shows and a
re-send repairs it without a second commit; edits and deletes change git once however often
they are delivered; invalid messages are reported and do not stop the provisioner.
"""

import asyncio
import copy
import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes_validate
import nats
import pytest
import yaml
from sqlalchemy import select

from provisioner.gitops import Repository
from registry import contract
from registry.extensions import db
from registry.notifications import sender
from registry.outbox.models import OutboxEmail
from registry.products.services import ContactData
from registry.reference.models import QuotaOption
from registry.requests import services
from registry.requests.models import Request, RequestEvent, RequestStatus
from tests import builders
from tests.notifications.test_mail import received, text_part, to_addresses
from tests.support import eventually, run_async

WAIT = 30  # seconds: generous, for a loaded machine
ENVS = ("tools", "dev", "test", "prod")
K8S = "1.30"
QUOTAS = {
    "tools": dict(builders.DEFAULT_QUOTAS),
    "dev": dict(builders.DEFAULT_QUOTAS, cpu="cpu-request-1-limit-2"),
    "test": dict(builders.DEFAULT_QUOTAS, memory="memory-request-4-limit-8"),
    "prod": dict(builders.DEFAULT_QUOTAS, storage="storage-64"),
}


# --- fixtures ------------------------------------------------------------------------------------


# --- helpers -------------------------------------------------------------------------------------


def approve(requester, admin, **overrides) -> Request:
    req = builders.submit(requester, **overrides)
    services.decide(req.id, admin, approve=True)
    db.session.commit()
    return req


def status_of(request_id: int) -> str:
    db.session.rollback()
    status = db.session.scalar(select(Request.status).where(Request.id == request_id))
    db.session.rollback()
    return status


def events_of(request_id: int) -> list[RequestEvent]:
    db.session.rollback()
    events = list(
        db.session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id)
        )
    )
    db.session.rollback()
    return events


def wait_for(request_id: int, status: str, timeout: float = WAIT) -> None:
    try:
        eventually(lambda: status_of(request_id) == status, timeout=timeout)
    except AssertionError:
        timeline = [(e.to_status, e.step, e.cluster, e.note) for e in events_of(request_id)]
        raise AssertionError(
            f"request {request_id} is {status_of(request_id)!r}, not {status!r}, after"
            f" {timeout}s; timeline: {timeline}"
        ) from None


def git(gitops: Path, *args: str) -> str:
    return Repository(gitops).git(*args)


def subjects_on_main(gitops: Path) -> list[str]:
    return git(gitops, "log", "main", "--format=%s").splitlines()


def workflow_commits(gitops: Path, workflow: str) -> list[str]:
    """The commits on main made by ``workflow``, without the merge commits."""
    out = git(
        gitops,
        "log",
        "main",
        "--no-merges",
        "--fixed-strings",
        f"--grep=workflow {workflow})",
        "--format=%H",
    )
    return [line for line in out.splitlines() if line]


def merges_of(gitops: Path, workflow: str) -> list[str]:
    """The merge commits on main of ``workflow``'s branch."""
    return [s for s in subjects_on_main(gitops) if s.startswith(f"Merge {workflow}:")]


def files_on_main(gitops: Path, folder: str) -> list[str]:
    return git(gitops, "ls-tree", "-r", "--name-only", "main", "--", folder).splitlines()


def yaml_on_main(gitops: Path, path: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(git(gitops, "show", f"main:{path}")) if d is not None]


def stream_messages(app, url, subject: str) -> list[dict]:
    """Every message the registry stream holds on ``subject``, in order, as JSON."""

    async def read(js):
        stream = app.config["NATS_STREAM"]
        info = await js.stream_info(stream)
        found = []
        if info.state.messages == 0:
            return found
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            msg = await js.get_msg(stream, seq)
            if msg.subject == subject:
                found.append(json.loads(msg.data))
        return found

    return run_async(read, url)


def reports_for(app, url, workflow: str) -> list[dict]:
    return [
        r
        for r in stream_messages(app, url, contract.STATUS_SUBJECT)
        if r.get("workflow") == workflow
    ]


def publish(url, subject: str, body) -> None:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    run_async(lambda js: js.publish(subject, data), url)


def quota_numbers() -> dict[str, dict]:
    return {o.name: o.quotas for o in db.session.scalars(select(QuotaOption))}


# --- 1. approve -> provisioned, manifests on main, every step, the email -----------------------


def test_an_approved_silver_request_is_provisioned_with_valid_manifests_merged_to_main(
    provisioner, gitops, nats_app, mail_app, smtp_sink, owner, admin
):
    req = approve(
        owner,
        admin,
        name="River crossings",
        description="Permits for river crossings.",
        ministry_code="CITZ",
        owner=ContactData("Pat", "Owner", "pat.owner@example.com"),
        primary_lead=ContactData("Tam", "Lead", "tam.lead@example.com"),
        secondary_lead=ContactData("Sam", "Second", "sam.second@example.com"),
        quotas=QUOTAS,
    )
    request_id, product_id = req.id, req.product_id
    plate = req.product.licence_plate
    workflow = f"silver-{plate}-{request_id}"
    wait_for(request_id, "provisioned")

    # The branch of the workflow, merged into main: a merge commit and the commit naming the
    # request.
    on_main = subjects_on_main(gitops)
    assert f"Merge {workflow}: create {plate} on silver" in on_main
    [commit] = workflow_commits(gitops, workflow)
    message = git(gitops, "log", "-1", "--format=%s", commit)
    assert message == f"Create {plate} on silver (request {request_id}, workflow {workflow})"
    branch_head = git(gitops, "rev-parse", workflow)
    assert branch_head == commit
    git(gitops, "merge-base", "--is-ancestor", workflow, "main")  # raises when not merged
    assert git(gitops, "rev-parse", "main^2") == commit  # main's tip merges the branch

    # Every file the workflow wrote, and nothing else.
    folder = f"silver/{plate}"
    expected = {f"{folder}/vault.yaml", f"{folder}/artifactory.yaml"} | {
        f"{folder}/{plate}-{env}/{name}"
        for env in ENVS
        for name in (
            "namespace.yaml",
            "resourcequotas.yaml",
            "rolebinding.yaml",
            "networkpolicy.yaml",
        )
    }
    assert set(files_on_main(gitops, folder)) == expected
    changed = git(gitops, "show", "--name-only", "--format=", commit).splitlines()
    assert set(changed) == expected | {f"acs/silver/{plate}.yaml"}

    contacts = ["pat.owner@example.com", "tam.lead@example.com", "sam.second@example.com"]
    documents = 0
    for path in sorted(expected - {f"{folder}/artifactory.yaml"}):
        for doc in yaml_on_main(gitops, path):
            kubernetes_validate.validate(doc, K8S, strict=True)
            documents += 1
    assert documents == 4 * 5 + 2  # per namespace 5 objects (two quotas); vault SA + accounts

    for env in ENVS:
        name = f"{plate}-{env}"
        [namespace] = yaml_on_main(gitops, f"{folder}/{name}/namespace.yaml")
        assert namespace["kind"] == "Namespace"
        assert namespace["metadata"]["name"] == name
        assert namespace["metadata"]["labels"] == {
            "environment": env,
            "name": plate,
            "profile_id": str(product_id),
            "project_type": "user",
            "provisioned-by": "argocd",
        }
        assert namespace["metadata"]["annotations"] == {
            "openshift.io/display-name": "River crossings",
            "openshift.io/description": "Permits for river crossings.",
            "openshift.io/requester": "pat.owner@example.com",
            "product-owner": "pat.owner@example.com",
            "technical-lead": "tam.lead@example.com,sam.second@example.com",
        }

        [binding] = yaml_on_main(gitops, f"{folder}/{name}/rolebinding.yaml")
        assert binding["kind"] == "RoleBinding"
        assert binding["metadata"]["namespace"] == name
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "admin",
        }
        assert binding["subjects"] == [
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": email}
            for email in contacts
        ]

        [policy] = yaml_on_main(gitops, f"{folder}/{name}/networkpolicy.yaml")
        assert policy["kind"] == "NetworkPolicy"
        assert policy["metadata"]["namespace"] == name
        # Default deny: every pod selected, both directions, no rule lets anything through.
        assert policy["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}

    def hard(env: str) -> dict:
        compute, storage = yaml_on_main(gitops, f"{folder}/{plate}-{env}/resourcequotas.yaml")
        assert compute["kind"] == storage["kind"] == "ResourceQuota"
        assert compute["metadata"]["namespace"] == storage["metadata"]["namespace"]
        return {**compute["spec"]["hard"], **storage["spec"]["hard"]}

    backup = "netapp-file-backup.storageclass.storage.k8s.io/requests.storage"
    block = "netapp-block-standard.storageclass.storage.k8s.io/requests.storage"
    file = "netapp-file-standard.storageclass.storage.k8s.io/requests.storage"
    snapshots = "count/volumesnapshots.snapshot.storage.k8s.io"
    assert hard("tools") == {
        "requests.cpu": "0.5",
        "limits.cpu": "1.5",
        "requests.memory": "2Gi",
        "limits.memory": "4Gi",
        "requests.storage": "1Gi",
        "persistentvolumeclaims": "60",
        block: "1Gi",
        file: "1Gi",
        backup: "512Mi",
        snapshots: "5",
    }
    dev = hard("dev")
    assert (dev["requests.cpu"], dev["limits.cpu"]) == ("1", "2")
    assert (dev["requests.memory"], dev["limits.memory"]) == ("2Gi", "4Gi")
    test = hard("test")
    assert (test["requests.memory"], test["limits.memory"]) == ("4Gi", "8Gi")
    assert (test["requests.cpu"], test["limits.cpu"]) == ("0.5", "1.5")
    prod = hard("prod")
    assert prod["requests.storage"] == prod[block] == prod[file] == "64Gi"
    assert prod[backup] == "32Gi"
    assert prod["persistentvolumeclaims"] == "60"
    assert prod[snapshots] == "5"

    # Per product, in -tools: the Vault service account and the two licensed accounts...
    account, licensed = yaml_on_main(gitops, f"{folder}/vault.yaml")
    assert account["kind"] == "ServiceAccount"
    assert account["metadata"]["namespace"] == f"{plate}-tools"
    assert account["metadata"]["annotations"]["vault.gov.bc.ca/namespaces"] == ",".join(
        f"{plate}-{env}" for env in ENVS
    )
    assert licensed["metadata"]["namespace"] == f"{plate}-tools"
    assert licensed["data"] == {
        "product-owner": "pat.owner@example.com",
        "technical-lead": "tam.lead@example.com",
    }
    # ...and the Artifactory account, a custom resource Kubernetes' schemas do not know.
    [artifactory] = yaml_on_main(gitops, f"{folder}/artifactory.yaml")
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(artifactory, K8S, strict=True)
    assert artifactory == {
        "apiVersion": "artifactory.devops.gov.bc.ca/v1alpha1",
        "kind": "ArtifactoryServiceAccount",
        "metadata": {"name": "default", "namespace": f"{plate}-tools", "labels": {"name": plate}},
        "spec": {"current_plate": plate, "descriptor": "Pulls images for River crossings"},
    }

    # The team's ACS account, recorded in the repository.
    [acs] = yaml_on_main(gitops, f"acs/silver/{plate}.yaml")
    assert acs == {
        "licencePlate": plate,
        "cluster": "silver",
        "team": "River crossings",
        "ministry": "CITZ",
        "namespaces": [f"{plate}-{env}" for env in ENVS],
        "users": contacts,
    }

    # Every step on the timeline, in the provisioner's order, once each.
    events = events_of(request_id)
    assert [e.step for e in events if e.step] == list(contract.STEPS)
    assert all(e.cluster == "silver" for e in events if e.step)
    assert [e.to_status for e in events][:2] == ["pending", "approved"]
    assert events[-1].to_status == "provisioned"
    [committed] = [e for e in events if e.step == "manifests_committed"]
    assert str(gitops.resolve()) not in committed.note  # no path of the provisioner's disk
    assert f"branch {workflow}" in committed.note
    assert commit[:10] in committed.note

    # The provisioner's own account of it.
    [run] = [r for r in provisioner.runs if r.workflow == workflow]
    assert run.steps == list(contract.STEPS)
    assert run.commits == [commit]

    # The "provisioned" email, in the outbox and then over SMTP to the team.
    db.session.rollback()
    [row] = db.session.scalars(
        select(OutboxEmail).where(
            OutboxEmail.request_id == request_id, OutboxEmail.kind == "provisioned"
        )
    ).all()
    team = {"pat.owner@example.com", "tam.lead@example.com", "sam.second@example.com", owner.email}
    assert set(row.recipients) == team
    assert sender.deliver_due() >= 1
    [delivered] = [m for m in received(smtp_sink) if m["Subject"].strip() == row.subject]
    assert row.subject.endswith(f"Your namespaces are ready: River crossings ({plate})")
    assert set(delivered.envelope_to) == to_addresses(delivered) == team
    text = text_part(delivered)
    for env in ENVS:
        assert f"{plate}-{env}" in text
    assert "https://console.apps.silver.devops.gov.bc.ca" in text


# --- 2. gold: both clusters, both reports, then provisioned ---------------------------------------


def test_a_gold_request_is_provisioned_on_gold_and_golddr_before_it_is_done(
    provisioner, gitops, owner, admin
):
    req = approve(owner, admin, cluster_name="gold", name="Gold ledger")
    request_id, plate = req.id, req.product.licence_plate
    wait_for(request_id, "provisioned")

    on_main = subjects_on_main(gitops)
    for cluster in ("gold", "golddr"):
        workflow = f"{cluster}-{plate}-{request_id}"
        assert f"Merge {workflow}: create {plate} on {cluster}" in on_main
        assert len(workflow_commits(gitops, workflow)) == 1
        files = files_on_main(gitops, f"{cluster}/{plate}")
        assert len(files) == 4 * 4 + 2
        for env in ENVS:
            [namespace] = yaml_on_main(gitops, f"{cluster}/{plate}/{plate}-{env}/namespace.yaml")
            kubernetes_validate.validate(namespace, K8S, strict=True)
            assert namespace["metadata"]["labels"]["name"] == plate
        assert yaml_on_main(gitops, f"acs/{cluster}/{plate}.yaml")[0]["cluster"] == cluster

    events = events_of(request_id)
    done = [e for e in events if e.step == "provisioned"]
    assert sorted(e.cluster for e in done) == ["gold", "golddr"]
    first, second = done
    # The first cluster to finish leaves the request partially provisioned; the second ends it.
    assert first.to_status == "partially_provisioned"
    assert second.to_status == "provisioned"
    assert events[-1].id == second.id
    partial = [e for e in events if e.to_status == "partially_provisioned"]
    assert partial and partial[0].id == first.id
    for cluster in ("gold", "golddr"):
        assert [e.step for e in events if e.step and e.cluster == cluster] == list(contract.STEPS)


# --- 3. a failure injected, the rule lifted, a re-send, no duplicate commit ----------------------


def test_an_injected_failure_shows_on_the_request_and_a_resend_repairs_it_without_a_duplicate(
    provisioner, gitops, nats_app, client, owner, admin
):
    nats_app.config["PROVISIONER_FAIL_RULES"] = [{"step": "manifests_committed", "match": "Broken"}]
    req = approve(owner, admin, name="Broken ferry")
    request_id, plate = req.id, req.product.licence_plate
    workflow = f"silver-{plate}-{request_id}"
    wait_for(request_id, "failed")

    events = events_of(request_id)
    [failed] = [e for e in events if e.to_status == "failed"]
    assert "Injected failure at manifests_committed" in failed.note
    assert failed.cluster == "silver"
    assert [e.step for e in events if e.step and e.to_status != "failed"] == [
        "workflow_started",
        "acs_account_created",
    ]
    # Nothing of it reached main.
    assert not [s for s in subjects_on_main(gitops) if workflow in s]
    assert files_on_main(gitops, f"silver/{plate}") == []
    assert files_on_main(gitops, f"acs/silver/{plate}.yaml") == []

    # The rule is lifted; a super admin re-sends.
    nats_app.config["PROVISIONER_FAIL_RULES"] = []
    builders.login(client, admin)
    response = builders.post(client, f"/admin/requests/{request_id}/resend")
    assert response.status_code == 303
    wait_for(request_id, "provisioned")

    assert len(workflow_commits(gitops, workflow)) == 1
    touching = git(gitops, "log", "main", "--no-merges", "--format=%H", "--", f"silver/{plate}")
    assert len(touching.splitlines()) == 1
    assert len(merges_of(gitops, workflow)) == 1
    assert len(files_on_main(gitops, f"silver/{plate}")) == 4 * 4 + 2

    events = events_of(request_id)
    resent = next(i for i, e in enumerate(events) if e.note and "Re-sent" in e.note)
    assert events[resent].to_status == "approved"
    assert [e.step for e in events[resent:] if e.step] == list(contract.STEPS)
    db.session.rollback()
    assert db.session.get(Request, request_id).attempt == 2


def test_a_failure_before_the_commit_leaves_nothing_behind_for_the_next_product(
    provisioner, gitops, nats_app, client, owner, admin
):
    """A workflow that fails after writing files but before committing them must not leave them
    in the working tree, where the next product's commit would take them."""
    nats_app.config["PROVISIONER_FAIL_RULES"] = [{"step": "acs_account_created", "match": "Leaky"}]
    broken = approve(owner, admin, name="Leaky pipes")
    broken_id, broken_plate = broken.id, broken.product.licence_plate
    wait_for(broken_id, "failed")

    other = approve(owner, admin, name="Sound pipes")
    other_id, other_plate = other.id, other.product.licence_plate
    wait_for(other_id, "provisioned")
    [commit] = workflow_commits(gitops, f"silver-{other_plate}-{other_id}")
    changed = git(gitops, "show", "--name-only", "--format=", commit).splitlines()
    assert not [path for path in changed if broken_plate in path], changed
    assert files_on_main(gitops, f"acs/silver/{broken_plate}.yaml") == []

    nats_app.config["PROVISIONER_FAIL_RULES"] = []
    builders.login(client, admin)
    assert builders.post(client, f"/admin/requests/{broken_id}/resend").status_code == 303
    wait_for(broken_id, "provisioned")
    assert len(workflow_commits(gitops, f"silver-{broken_plate}-{broken_id}")) == 1


# --- 4. edit and delete messages, each delivered twice ------------------------------------------


def test_edit_and_delete_messages_change_git_once_each_even_when_delivered_twice(
    provisioner, gitops, nats_app, nats_server, owner, admin
):
    req = approve(owner, admin, name="Salmon counts")
    request_id, plate = req.id, req.product.licence_plate
    subject = "registry_project_provisioning_silver"
    wait_for(request_id, "provisioned")
    [create] = stream_messages(nats_app, nats_server.url, subject)
    assert create["workflow"] == f"silver-{plate}-{request_id}"
    [create_commit] = workflow_commits(gitops, create["workflow"])
    folder = f"silver/{plate}"
    prod_quotas = f"{folder}/{plate}-prod/resourcequotas.yaml"
    dev_quotas = f"{folder}/{plate}-dev/resourcequotas.yaml"
    assert yaml_on_main(gitops, prod_quotas)[1]["spec"]["hard"]["requests.storage"] == "1Gi"

    # An edit (a request the registry does not know: its reports are dead-lettered there).
    numbers = quota_numbers()
    edit = copy.deepcopy(create)
    edit["action"] = "edit"
    edit["workflow"] = f"silver-{plate}-{request_id + 9000}"
    for ns in edit["namespaces"]:
        if ns["name"] == f"{plate}-prod":
            ns["quota"]["storage"] = "storage-64"
            ns["quotas"]["storage"] = numbers["storage-64"]
        if ns["name"] == f"{plate}-dev":
            ns["quota"]["cpu"] = "cpu-request-2-limit-4"
            ns["quotas"]["cpu"] = numbers["cpu-request-2-limit-4"]
    publish(nats_server.url, subject, edit)
    publish(nats_server.url, subject, edit)

    def provisioned_twice(workflow):
        reports = reports_for(nats_app, nats_server.url, workflow)
        return reports if [r["status"] for r in reports].count("provisioned") == 2 else None

    reports = eventually(lambda: provisioned_twice(edit["workflow"]), timeout=WAIT)
    # The same outcome both times: every step, in order.
    assert [r["status"] for r in reports] == list(contract.STEPS) * 2
    [edit_commit] = workflow_commits(gitops, edit["workflow"])
    [first_note, second_note] = [
        r["message"] for r in reports if r["status"] == "manifests_committed"
    ]
    assert edit_commit[:10] in first_note
    assert "nothing to commit" in second_note
    runs = [r for r in provisioner.runs if r.workflow == edit["workflow"]]
    assert [r.commits for r in runs] == [[edit_commit], []]
    assert len(merges_of(gitops, edit["workflow"])) == 1

    # The quota change shows as a diff in git, and only there.
    diff = git(gitops, "diff", create_commit, edit_commit, "--", folder)
    changed = git(gitops, "diff", "--name-only", create_commit, edit_commit).splitlines()
    assert sorted(changed) == sorted([prod_quotas, dev_quotas])
    assert re.search(r'^-\s+requests\.storage: "1Gi"$', diff, re.M)
    assert re.search(r'^\+\s+requests\.storage: "64Gi"$', diff, re.M)
    assert re.search(r'^\+\s+netapp-file-backup\S+: "32Gi"$', diff, re.M)
    assert re.search(r'^-\s+requests\.cpu: "0\.5"$', diff, re.M)
    assert re.search(r'^\+\s+requests\.cpu: "2"$', diff, re.M)
    assert re.search(r'^\+\s+limits\.cpu: "4"$', diff, re.M)
    storage = yaml_on_main(gitops, prod_quotas)[1]
    kubernetes_validate.validate(storage, K8S, strict=True)
    assert storage["spec"]["hard"]["requests.storage"] == "64Gi"
    assert yaml_on_main(gitops, dev_quotas)[0]["spec"]["hard"]["limits.cpu"] == "4"

    # A delete, twice: the product's folder goes, once.
    delete = copy.deepcopy(edit)
    delete["action"] = "delete"
    delete["workflow"] = f"silver-{plate}-{request_id + 9001}"
    publish(nats_server.url, subject, delete)
    publish(nats_server.url, subject, delete)
    reports = eventually(lambda: provisioned_twice(delete["workflow"]), timeout=WAIT)
    assert [r["status"] for r in reports] == list(contract.STEPS) * 2
    [delete_commit] = workflow_commits(gitops, delete["workflow"])
    assert files_on_main(gitops, folder) == []
    assert files_on_main(gitops, f"acs/silver/{plate}.yaml") == []
    removed = git(gitops, "diff", "--name-status", edit_commit, delete_commit).splitlines()
    assert len(removed) == 4 * 4 + 2 + 1
    assert all(line.startswith("D\t") for line in removed)
    runs = [r for r in provisioner.runs if r.workflow == delete["workflow"]]
    assert [r.commits for r in runs] == [[delete_commit], []]
    assert len(merges_of(gitops, delete["workflow"])) == 1


# --- 5. an invalid message is reported failed, and the provisioner goes on ----------------------


def test_an_invalid_message_is_reported_failed_and_the_provisioner_goes_on(
    provisioner, gitops, nats_app, nats_server, owner, admin
):
    subject = "registry_project_provisioning_silver"
    base = {
        "action": "create",
        "profile_id": 1,
        "licencePlate": "fab123",
        "cluster_id": 1,
        "cluster_name": "silver",
        "display_name": "No namespaces",
        "description": "",
        "ministry_id": "CITZ",
        "merge_type": "auto",
        "alliance": "none",
        "isContactChanged": False,
        "contacts": [
            {"email": "po@example.com", "role": "owner"},
            {"email": "tl@example.com", "role": "lead"},
        ],
    }
    missing = dict(base, workflow="silver-fab123-91001")  # no namespaces at all
    wrong_type = dict(  # namespaces of the wrong shape: quotas that are no mapping
        base,
        workflow="silver-fab123-91002",
        namespaces=[{"name": f"fab123-{env}", "quota": None, "quotas": None} for env in ENVS],
    )
    publish(nats_server.url, subject, b"this is not JSON")
    publish(nats_server.url, subject, missing)
    publish(nats_server.url, subject, wrong_type)

    [report] = eventually(
        lambda: reports_for(nats_app, nats_server.url, missing["workflow"]), timeout=WAIT
    )
    assert report["status"] == "failed"
    assert report["prefix"] == "fab123"
    assert report["clusterName"] == "silver"
    assert "Invalid provisioning message" in report["message"]
    assert "namespaces" in report["message"]
    [report] = eventually(
        lambda: reports_for(nats_app, nats_server.url, wrong_type["workflow"]), timeout=WAIT
    )
    assert report["status"] == "failed"
    assert "Invalid provisioning message" in report["message"]

    # Nothing was written for them, and a valid message after them is still provisioned.
    req = approve(owner, admin)
    wait_for(req.id, "provisioned")
    assert provisioner.is_alive()
    assert files_on_main(gitops, "silver/fab123") == []
    assert not [r for r in provisioner.runs if r.workflow.startswith("silver-fab123-")]
    assert [r["status"] for r in reports_for(nats_app, nats_server.url, missing["workflow"])] == [
        "failed"
    ]


# --- 5b. delivery: a workflow slower than the ack wait, a "try again" that was lost ---------------

ACK_WAIT = 1.6  # seconds, in these tests; 20 by default


@pytest.fixture
def quick_acks(nats_app):
    """A provisioner whose messages come back after ``ACK_WAIT`` seconds without word.
    Named before ``provisioner`` in a test, so it is set before the consumer is made."""
    nats_app.config["PROVISIONER_ACK_WAIT_SECONDS"] = ACK_WAIT


def test_a_workflow_slower_than_the_ack_wait_is_not_handed_out_again_while_it_runs(
    quick_acks, provisioner, nats_app, nats_server, owner, admin, monkeypatch
):
    from provisioner import worker

    running, finish = threading.Event(), threading.Event()
    original = worker.workflow.run

    def slow_run(*args, **kwargs):
        running.set()
        finish.wait(WAIT)
        return original(*args, **kwargs)

    monkeypatch.setattr(worker.workflow, "run", slow_run)
    req = approve(owner, admin)
    assert running.wait(WAIT)

    async def another_taker(js):
        # Anyone else pulling from the same durable while the workflow runs, for three times
        # the ack wait: the message is not handed out again (the provisioner says "in progress").
        subscription = await js.pull_subscribe_bind(
            durable=provisioner.settings.config["PROVISIONER_DURABLE"],
            stream=nats_app.config["NATS_STREAM"],
        )
        try:
            return await subscription.fetch(batch=1, timeout=3 * ACK_WAIT)
        except (nats.errors.TimeoutError, TimeoutError):
            return []

    try:
        assert run_async(another_taker, nats_server.url) == []
    finally:
        finish.set()
    wait_for(req.id, "provisioned")


def test_a_try_again_that_was_lost_comes_back_after_the_ack_wait(
    quick_acks, provisioner, nats_app, owner, admin, monkeypatch
):
    from nats.aio.msg import Msg

    from provisioner import worker

    original = worker.workflow.run
    calls = []

    def publishing_fails_once(*args, **kwargs):
        calls.append(args[0]["workflow"])
        if len(calls) == 1:  # a report could not be published: the workflow pauses
            raise worker.ReportNotSent("NoStreamResponseError: nats: no response from stream")
        return original(*args, **kwargs)

    async def lost_nak(self, delay=None):  # the node the "try again" went to died with it
        return None

    monkeypatch.setattr(worker.workflow, "run", publishing_fails_once)
    monkeypatch.setattr(Msg, "nak", lost_nak)
    req = approve(owner, admin)
    wait_for(req.id, "provisioned", timeout=10 * ACK_WAIT)
    assert len(calls) == 2


# --- 6. the real pipeline's way of listening: a plain NATS subscription ---------------------------


def test_a_plain_nats_subscriber_receives_the_message_the_relay_publishes(
    provisioner, nats_app, nats_server, owner, admin
):
    subscribed = threading.Event()
    subject = "registry_project_provisioning_silver"

    async def listen():
        nc = await nats.connect(nats_server.url, connect_timeout=3, max_reconnect_attempts=0)
        try:
            subscription = await nc.subscribe(subject)  # core NATS, no JetStream
            await nc.flush()
            subscribed.set()
            msg = await subscription.next_msg(timeout=WAIT)
            return msg.subject, json.loads(msg.data)
        finally:
            await nc.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        received = pool.submit(lambda: asyncio.run(listen()))
        assert subscribed.wait(10), "the subscriber did not subscribe"
        req = approve(owner, admin, name="Listening post")
        got_subject, body = received.result(timeout=WAIT + 5)

    request_id, plate = req.id, req.product.licence_plate
    assert got_subject == subject
    [stored] = stream_messages(nats_app, nats_server.url, subject)
    assert body == stored
    assert body["workflow"] == f"silver-{plate}-{request_id}"
    assert body["action"] == "create"
    assert body["display_name"] == "Listening post"
    assert contract.validate_provisioning_message(body) == []
    # And the provisioner, on its durable consumer, got the same message.
    wait_for(request_id, "provisioned")


# --- 7. in a real browser -----------------------------------------------------------------------


@pytest.mark.browser
def test_in_a_browser_the_owner_requests_the_admin_approves_and_the_page_reaches_provisioned(
    browser, page, live_server, provisioner, gitops, owner, admin
):
    from playwright.sync_api import expect

    from tests.browser.test_browser import (
        Navigations,
        approve_from_queue,
        document_survived,
        fill_contact,
        mark_document,
        sign_in,
    )

    sign_in(page, live_server, owner)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="New product").click()
    page.get_by_label("Product name").fill("Otter sightings")
    page.get_by_label("Description").fill("Where the otters were seen.")
    page.get_by_label("Ministry").select_option("ENV")
    fill_contact(page, "Product owner", "Pat", "Owner", "pat.owner@example.com")
    fill_contact(page, "Primary technical lead", "Tam", "Lead", "tam.lead@example.com")
    page.get_by_role("button", name="Submit for review").click()
    page.get_by_role("button", name="Send the request").click()
    expect(page).to_have_url(re.compile(r"/requests/\d+$"))
    request_id = int(page.url.rsplit("/", 1)[1])
    badge = page.locator("#request-summary .badge")
    expect(badge).to_have_text("Pending approval")
    navigations = Navigations(page)
    mark_document(page)

    approve_from_queue(browser, live_server, admin, request_id)

    # The owner's open page follows the provisioner to the end, without a reload.
    expect(badge).to_have_text("Provisioned", timeout=WAIT * 1000)
    steps = page.locator("#timeline li.step")
    expect(steps).to_have_count(len(contract.STEPS))
    for index, step in enumerate(contract.STEPS):
        entry = steps.nth(index)
        expect(entry).to_have_class(re.compile(rf"\bstep-{step}\b"))
        expect(entry.locator(".what")).to_have_text(contract.STEP_LABELS[step])
        expect(entry.locator(".tag")).to_have_text("silver")
    plate = db.session.get(Request, request_id).product.licence_plate
    workflow = f"silver-{plate}-{request_id}"
    # The page says which commit, on which branch; not where it is on the provisioner's disk.
    note = page.locator("#timeline li.step-manifests_committed .note")
    expect(note).not_to_contain_text(str(gitops.resolve()))
    expect(page.locator("#timeline li.step-manifests_committed .note")).to_contain_text(workflow)
    expect(page.locator("#request-live[hx-trigger]")).to_have_count(0)
    assert navigations.count == 0
    assert document_survived(page)
    assert status_of(request_id) == RequestStatus.PROVISIONED
    assert len(workflow_commits(gitops, workflow)) == 1
