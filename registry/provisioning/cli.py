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
from . import bp, services
from .models import ServiceAccount


@bp.cli.group("service-accounts", help="Machine accounts for the HTTP API.")
def service_accounts():
    pass


@service_accounts.command("create")
@click.argument("name")
@click.option(
    "--expires-in-days",
    type=click.IntRange(min=0, max=services.MAX_TOKEN_DAYS),
    default=services.DEFAULT_TOKEN_DAYS,
    show_default=True,
    help="The token is refused after this many days; 0: it never expires.",
)
def create_service_account(name, expires_in_days):
    """Create a provisioner service account and print its bearer token (shown only once)."""
    try:
        account, token = services.create_service_account(name, expires_in_days)
    except services.ServiceAccountError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    expiry = (
        f"it expires on {account.expires_at:%Y-%m-%d} (UTC)"
        if account.expires_at
        else "it never expires"
    )
    click.echo(
        f"Service account {account.name} created; {expiry}. Its token, shown only this once:"
    )
    click.echo(token)


@service_accounts.command("revoke")
@click.argument("name")
def revoke_service_account(name):
    """Turn a service account off: its token stops working at once."""
    account = db.session.scalar(select(ServiceAccount).where(ServiceAccount.name == name))
    if account is None:
        raise click.ClickException(f"No service account named {name}.")
    try:
        services.revoke_service_account(account)
    except services.ServiceAccountError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Service account {name} revoked.")


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
