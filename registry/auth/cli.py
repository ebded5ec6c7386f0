import click
from sqlalchemy import select

from ..audit import services as audit
from ..extensions import db
from . import bp, services
from . import service_accounts as accounts
from .models import Role, ServiceAccount

ROLE_CHOICE = click.Choice([r.value for r in Role])


@bp.cli.group("users", help="Manage accounts.")
def users():
    pass


@users.command("create")
@click.argument("email")
@click.option("--name", default="", help="Display name.")
@click.option("--role", type=ROLE_CHOICE, default=Role.USER.value, show_default=True)
@click.password_option(help="Password; asked for when not given.")
def create(email, name, role, password):
    """Create an account with a role (super_admin, support or user)."""
    try:
        user = services.create_user(email, name, password, Role(role))
    except services.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    audit.record("user_created", target=user.email, detail=f"{user.role} (command line)")
    db.session.commit()
    click.echo(f"Created {user.email} ({user.role}).")


@users.command("set-role")
@click.argument("email")
@click.argument("role", type=ROLE_CHOICE)
def set_role(email, role):
    """Change the role of an existing account."""
    user = _changed(services.set_role, email, Role(role))
    click.echo(f"{user.email} is now {user.role}.")


@users.command("deactivate")
@click.argument("email")
def deactivate(email):
    """Turn an account off: its sessions end at once and it cannot sign in."""
    user = _changed(services.set_active, email, False)
    click.echo(f"{user.email} is deactivated; every session of it has ended.")


@users.command("reactivate")
@click.argument("email")
def reactivate(email):
    """Let a deactivated account sign in again."""
    user = _changed(services.set_active, email, True)
    click.echo(f"{user.email} can sign in again.")


def _changed(change, email, value):
    """Apply an account service and commit; its refusal becomes the command's error."""
    try:
        user = change(email, value)
    except services.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    return user


@bp.cli.group("service-accounts", help="Machine accounts for the HTTP API.")
def service_accounts():
    pass


@service_accounts.command("create")
@click.argument("name")
@click.option(
    "--expires-in-days",
    type=click.IntRange(min=0, max=accounts.MAX_TOKEN_DAYS),
    default=accounts.DEFAULT_TOKEN_DAYS,
    show_default=True,
    help="The token is refused after this many days; 0: it never expires.",
)
def create_service_account(name, expires_in_days):
    """Create a provisioner service account and print its bearer token (shown only once)."""
    try:
        account, token = accounts.create_service_account(name, expires_in_days)
    except accounts.ServiceAccountError as exc:
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
        accounts.revoke_service_account(account)
    except accounts.ServiceAccountError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"Service account {name} revoked.")
