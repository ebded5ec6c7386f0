import dataclasses
import re
import time
from pathlib import Path

from flask import current_app, redirect, render_template

from ..access import Role, roles_required
from ..contract import STEP_LABELS
from ..timeutil import utcnow
from . import bp, charts, queries, stuck

STUCK_SHOWN = 50
# The weeks' numbers are read at most this often per process (about 100 ms at 100,000 products);
# the stuck requests and the queue are read fresh on every load.
OVERVIEW_SECONDS = 60
# The steps in a word or two, under the bars (the table and the bars' titles say them whole).
SHORT_STEPS = {
    "workflow_started": "Started",
    "acs_account_created": "ACS",
    "manifests_committed": "Manifests",
    "pull_request_merged": "PR merged",
    "namespaces_created": "Namespaces",
    "vault_accounts_created": "Vault",
    "artifactory_account_created": "Artifactory",
    "provisioned": "Provisioned",
}
SHORT_BY_LABEL = {STEP_LABELS[step]: short for step, short in SHORT_STEPS.items()}


def _charts(overview: queries.Overview) -> dict:
    weeks = overview.weeks
    labels = [w.label for w in weeks]
    outcome_series = [
        charts.Series(key, label, [w.outcomes[key] for w in weeks])
        for key, label in queries.OUTCOMES
    ]

    def quantiles(attribute):
        values = [getattr(w, attribute) for w in weeks]
        return [
            charts.Series("median", "Median", [queries.percentile(v, 0.5) for v in values]),
            charts.Series("p90", "90th percentile", [queries.percentile(v, 0.9) for v in values]),
        ]

    made = {
        "outcomes": charts.stacked_bars(
            "chart-outcomes",
            "Requests per week by outcome",
            "Requests submitted each week, stacked by what became of them.",
            labels,
            outcome_series,
        ),
        "decision": charts.lines(
            "chart-decision",
            "Time to a decision",
            "Median and 90th percentile time from submission to a super admin's decision,"
            " by the week of the decision.",
            labels,
            quantiles("to_decision"),
            unit="duration",
        ),
        "provisioned": charts.lines(
            "chart-provisioned",
            "Time from approval to provisioned",
            "Median and 90th percentile time from approval to provisioned, by the week it was"
            " provisioned.",
            labels,
            quantiles("to_provisioned"),
            unit="duration",
        ),
        "queue": charts.bars(
            "chart-queue",
            "Today's queue by age",
            "Requests waiting for a decision now, by how long they have waited.",
            list(queries.QUEUE_AGES),
            overview.queue_ages,
            key="queue",
            label="Pending requests",
        ),
        "steps": charts.bars(
            "chart-steps",
            "The provisioner's steps: median duration",
            "Median time each step took, from the report before it, over the last 12 weeks.",
            [s.label for s in overview.steps],
            [s.median_seconds for s in overview.steps],
            key="step",
            label="Median duration",
            unit="duration",
            axis=[SHORT_STEPS[s.step] for s in overview.steps],
        ),
        "failures": charts.bars(
            "chart-failures",
            "Failures by step",
            "How many times each step failed in the last 12 weeks.",
            [label for label, _ in overview.failures],
            [count for _, count in overview.failures],
            key="failed",
            label="Failures",
            axis=[SHORT_BY_LABEL[label] for label, _ in overview.failures],
        ),
    }
    made["queue"].category_label = "Waiting"
    made["steps"].category_label = made["failures"].category_label = "Step"
    return made


@bp.get("/operations")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def page():
    overview = _recent_overview()
    found = stuck.find(overview.now, limit=STUCK_SHOWN + 1)
    return render_template(
        "operations/page.html",
        overview=overview,
        charts=_charts(overview),
        stuck=found[:STUCK_SHOWN],
        more_stuck=len(found) > STUCK_SHOWN,
        runbook_url=stuck.runbook_url,
        format_duration=charts.format_duration,
    )


def _recent_overview() -> queries.Overview:
    cache = current_app.extensions.setdefault("operations.overview", {"at": -1e9, "value": None})
    now = time.monotonic()
    if cache["value"] is None or now - cache["at"] > OVERVIEW_SECONDS:
        cache["value"], cache["at"] = queries.overview(), now
        return cache["value"]
    # The queue's ages are today's: always fresh (one indexed count).
    overview = dataclasses.replace(cache["value"], now=utcnow())
    overview.queue_ages = queries.queue_ages(overview.now)
    return overview


# The runbook ships inside the package (package data), so an installed registry serves it too.
RUNBOOK = Path(__file__).resolve().with_name("runbook.md")


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@bp.get("/operations/runbook")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def runbook():
    """The runbook: at ``RUNBOOK_URL`` when set, else ``runbook.md`` beside this module, one
    section per heading (with the anchors GitHub would give them) as plain text."""
    if current_app.config.get("RUNBOOK_URL"):
        return redirect(current_app.config["RUNBOOK_URL"])
    title, sections, current = "Runbook", [], None
    for line in RUNBOOK.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^(#{1,4}) (.+)$", line)
        if heading and len(heading.group(1)) == 1:
            title = heading.group(2)
        elif heading:
            current = {
                "level": len(heading.group(1)),
                "title": heading.group(2),
                "id": _slug(heading.group(2)),
                "lines": [],
            }
            sections.append(current)
        elif current is None:
            sections.append(current := {"level": 2, "title": "", "id": "top", "lines": []})
            current["lines"].append(line)
        else:
            current["lines"].append(line)
    for section in sections:
        section["text"] = "\n".join(section.pop("lines")).strip("\n")
    return render_template("operations/runbook.html", title=title, sections=sections)
