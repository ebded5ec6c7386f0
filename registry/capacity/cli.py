"""``flask --app registry capacity ...``: run the checks of quotas over time by hand (the
background work runs them on its own every ``SCHEDULE_CHECK_SECONDS``)."""

from datetime import datetime

import click

from ..timeutil import utcnow
from . import bp, ends, savings


@bp.cli.command("ends")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="the day to check as (default: today, UTC)",
)
def ends_command(today: datetime | None):
    """Warn the teams of temporary increases ending soon, and give back those that ended."""
    done = ends.check(today.date() if today else None)
    click.echo(
        f"Temporary increases: {done['warned']} teams warned, {done['reverted']} given back,"
        f" {done['waiting']} waiting for another request, {done['changed']} changed since."
    )


@bp.cli.command("rightsize")
def rightsize_command():
    """Offer each idle product a smaller quota now (the background work does it weekly)."""
    done = savings.check(utcnow())
    click.echo(
        f"Right-sizing: {done['offered']} offers made, {done['withdrawn']} withdrawn,"
        f" {done['clusters_unread']} clusters whose Prometheus could not be read."
    )
