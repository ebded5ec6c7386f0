import asyncio
import json

import click
import nats
from flask import current_app
from sqlalchemy import select

from .. import contract, natsutil
from ..extensions import db
from ..products.models import Product
from ..requests.models import Request
from . import bp


@bp.cli.command("provisioner-report")
@click.argument("licence_plate")
@click.argument("cluster")
@click.argument("step", type=click.Choice([*contract.STEPS, contract.FAILED]))
@click.option("--message", default="", help="Free text, e.g. the reason of a failure.")
@click.option("--request-id", type=int, help="Default: the product's latest request.")
def provisioner_report(licence_plate, cluster, step, message, request_id):
    """Play the provisioner by hand: publish one status report for a plate, cluster and step."""
    url = current_app.config["NATS_URL"]
    if not url:
        raise click.ClickException("Set REGISTRY_NATS_URL (the dev command prints it).")
    if request_id is None:
        request_id = db.session.scalar(
            select(Request.id)
            .join(Product)
            .where(Product.licence_plate == licence_plate)
            .order_by(Request.id.desc())
            .limit(1)
        )
        if request_id is None:
            raise click.ClickException(f"No request for {licence_plate}.")
    body = contract.report_body(licence_plate, cluster, request_id, step, message)

    async def send():
        nc = await nats.connect(
            servers=natsutil.servers(url), connect_timeout=3, max_reconnect_attempts=0
        )
        try:
            ack = await nc.jetstream().publish(contract.STATUS_SUBJECT, json.dumps(body).encode())
        finally:
            await nc.close()
        return ack

    ack = asyncio.run(send())
    click.echo(f"Published {step} for {body['workflow']} (stream sequence {ack.seq}).")
