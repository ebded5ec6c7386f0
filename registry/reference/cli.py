import click

from ..extensions import db
from . import bp, services


@bp.cli.command("seed")
def seed():
    """Add the clusters, ministries and quota options of the domain that are missing."""
    added = services.seed()
    db.session.commit()
    click.echo(f"Reference data: {added} rows added.")
