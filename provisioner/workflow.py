"""One provisioning workflow: what Argo Workflows, Ansible, App.Provisioner and Argo CD do."""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from . import manifests
from .gitops import Repository


class InjectedFailure(Exception):
    """A failure asked for by a configured rule, to show and test the failed path."""


@dataclass
class FailureRule:
    step: str
    match: str  # a regular expression on "<licence plate> <display name>"

    def applies(self, step: str, message: dict) -> bool:
        subject = f"{message.get('licencePlate', '')} {message.get('display_name', '')}"
        return step == self.step and re.search(self.match, subject) is not None


@dataclass
class Run:
    """What one workflow did: the steps reported and the commits made, with their timings."""

    workflow: str
    steps: list[str] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)
    seconds: float = 0.0


def rules_from(config: list[dict] | None) -> list[FailureRule]:
    return [FailureRule(r["step"], r.get("match", ".*")) for r in (config or [])]


def run(
    message: dict,
    repo: Repository,
    report: Callable[[str, str], None],
    rules: list[FailureRule],
) -> Run:
    """Provision (or change, or remove) one product set on one cluster, reporting every step.

    ``report(status, message)`` tells the registry. Running the same workflow again makes no
    second commit (the tree is the same) and reports the same steps.
    """
    started = time.perf_counter()
    result = Run(message["workflow"])

    def before(name: str) -> None:
        """A failure rule for this step stops the workflow before the step's work is done."""
        for rule in rules:
            if rule.applies(name, message):
                raise InjectedFailure(f"Injected failure at {name} (rule {rule.match!r}).")

    def step(name: str, note: str = "") -> None:
        report(name, note)
        result.steps.append(name)

    plate, cluster, workflow = message["licencePlate"], message["cluster_name"], message["workflow"]
    request_id = workflow.rsplit("-", 1)[1]
    action = message["action"]
    before("workflow_started")
    step("workflow_started", f"Workflow {workflow} started ({action}).")

    repo.start_branch(workflow)
    before("acs_account_created")
    if action == "delete":
        manifests.remove_product(repo.path, message)
        step("acs_account_created", "ACS account removed.")
    else:
        manifests.write_acs_record(repo.path, message)
        step("acs_account_created", f"ACS account recorded for {message['display_name']}.")

    before("manifests_committed")
    if action != "delete":
        manifests.write_product(repo.path, message)
    commit = repo.commit_all(
        f"{action.capitalize()} {plate} on {cluster} (request {request_id}, workflow {workflow})"
    )
    if commit:
        result.commits.append(commit)
    # The commit and the branch, and where to read it when the repository has a web address;
    # never the repository's path on the provisioner's disk.
    link = repo.commit_url(commit) if commit else None
    step(
        "manifests_committed",
        (f"Commit {commit[:10]} on branch {workflow}." + (f" {link}" if link else ""))
        if commit
        else f"Manifests already as asked on {repo.main}; nothing to commit.",
    )
    if message.get("merge_type") == "auto":
        before("pull_request_merged")
        merged = repo.merge(workflow, f"Merge {workflow}: {action} {plate} on {cluster}")
        step("pull_request_merged", f"Branch {workflow} merged into {repo.main} at {merged[:10]}.")
    # Standing in for Argo CD, which would now apply main to the cluster.
    gone = action == "delete"
    for name, note in (
        ("namespaces_created", "Namespaces removed." if gone else "Namespaces applied."),
        (
            "vault_accounts_created",
            "Vault accounts removed." if gone else "Vault accounts applied.",
        ),
        (
            "artifactory_account_created",
            "Artifactory account removed." if gone else "Artifactory service account applied.",
        ),
        ("provisioned", f"{action.capitalize()} complete on {cluster}."),
    ):
        before(name)
        step(name, note)
    result.seconds = time.perf_counter() - started
    return result
