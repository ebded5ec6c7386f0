"""``flask --app registry review replay-usage``: before anyone changes the thresholds of
usage-based approval, how many past increases would have passed under others (from the usage
evidence each request keeps; Prometheus is not asked)."""

import click
from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..usage import rules
from .models import Request, RequestType
from .review import bp

THRESHOLDS = {
    "used_share": "AUTO_APPROVE_USED_SHARE",
    "storage_share": "AUTO_APPROVE_STORAGE_SHARE",
    "max_rise": "AUTO_APPROVE_MAX_RISE",
}


def replay(overrides: dict) -> dict[str, int]:
    """Counts of past increases: kept (with figures), passed now, would pass, unmeasured."""
    config = {**current_app.config, **overrides}
    counts = dict.fromkeys(("increases", "passed_then", "would_pass", "unmeasured"), 0)
    query = (
        select(Request.usage_evidence)
        .where(Request.type == RequestType.EDIT.value, Request.usage_evidence.is_not(None))
        .execution_options(yield_per=1000)
    )
    for evidence in db.session.scalars(query):
        counts["increases"] += 1
        counts["passed_then"] += bool(evidence.get("passed"))
        verdict = rules.would_pass(evidence, config)
        if verdict is None:
            counts["unmeasured"] += 1
        counts["would_pass"] += bool(verdict)
    return counts


@bp.cli.command("replay-usage")
@click.option("--used-share", type=click.FloatRange(0, 10), help="CPU/memory share of the request")
@click.option("--storage-share", type=click.FloatRange(0, 1), help="storage share of its claims")
@click.option("--max-rise", type=click.FloatRange(0, 100), help="the largest rise that may pass")
def replay_usage(**options):
    """How many past quota increases would have passed usage-based approval with other
    thresholds (those not given stay as set)."""
    overrides = {THRESHOLDS[k]: v for k, v in options.items() if v is not None}
    counts = replay(overrides)
    used = {k: overrides.get(v, current_app.config[v]) for k, v in THRESHOLDS.items()}
    click.echo("Thresholds: " + ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in used.items()))
    click.echo(
        f"{counts['increases']} increases with usage evidence: {counts['passed_then']} passed"
        f" when asked; {counts['would_pass']} would pass with these thresholds"
        f" ({counts['unmeasured']} had no usage and would still be reviewed)."
    )
