import click

from . import bp, sender


@bp.cli.command("send-mail")
def send_mail():
    """Send the emails that are due once, then exit (for cron or a one-off flush)."""
    total = 0
    while count := sender.deliver_due():
        total += count
    click.echo(f"Sent {total} emails.")
