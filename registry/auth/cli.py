import click

from ..extensions import db
from . import bp, services
from .models import Role

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
    db.session.commit()
    click.echo(f"Created {user.email} ({user.role}).")


@users.command("set-role")
@click.argument("email")
@click.argument("role", type=ROLE_CHOICE)
def set_role(email, role):
    """Change the role of an existing account."""
    try:
        user = services.set_role(email, Role(role))
    except services.AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    db.session.commit()
    click.echo(f"{user.email} is now {user.role}.")
