"""Commands of the whole application: the development server and the background worker."""

import contextlib
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

import click
from flask import current_app
from flask_migrate import upgrade
from werkzeug.serving import run_simple

from . import config, logs, wiring
from .access import Role
from .auth import services as accounts
from .extensions import db
from .metrics import server as metrics_server
from .provisioning import embedded as embedded_nats
from .reference import services as reference
from .usage import local as usage_local

DEMO_ACCOUNTS = [
    ("owner@example.com", "Olivia Owner", Role.USER),
    ("lead@example.com", "Liam Lead", Role.USER),
    ("admin@example.com", "Ada Admin", Role.SUPER_ADMIN),
    ("admin2@example.com", "Sam Second-Admin", Role.SUPER_ADMIN),
    ("support@example.com", "Sue Support", Role.SUPPORT),
]


def prepare_database() -> None:
    upgrade(directory=current_app.extensions["migrate"].directory)
    reference.seed()
    db.session.commit()


def ensure_demo_accounts() -> list[tuple[str, str, str]]:
    """Create the demo accounts that are missing; give all of them fresh passwords."""
    printed = []
    for email, name, role in DEMO_ACCOUNTS:
        password = secrets.token_urlsafe(9)
        user = accounts.get_by_email(email)
        if user is None:
            user = accounts.create_user(email, name, password, role)
        else:
            user.set_password(password)
        printed.append((email, password, role.label))
    db.session.commit()
    return printed


def _local_usage(app, worker):
    """Usage for the demo: the provisioner's simulated workload, scraped by a Prometheus on this
    machine, when Debian's ``prometheus`` is installed and no cluster's Prometheus is set."""
    if app.config["USAGE_PROMETHEUS_URLS"]:
        click.echo(f"Usage:    {', '.join(app.config['USAGE_PROMETHEUS_URLS'])} (as set)")
        return None
    # The reference side's simulated workload, for development only (as the provisioner is).
    from provisioner import workload

    metrics = workload.MetricsServer(worker.repo, time.time).start()
    url = usage_local.start(
        Path(app.instance_path), f"127.0.0.1:{metrics.port}", embedded_nats.free_port()
    )
    if url is None:
        metrics.stop()
        click.echo(
            "Usage:    off. Install Debian's prometheus (make prometheus) and start again,"
            " or set REGISTRY_USAGE_PROMETHEUS_URLS."
        )
        return None
    app.config["USAGE_PROMETHEUS_URLS"] = {
        c.name: url for c in reference.requestable_clusters(include_lab=True)
    }
    click.echo(f"Usage:    {url} scraping the provisioner's simulated workload ({metrics.url})")
    return metrics


def register(app) -> None:
    @app.cli.command("dev")
    @click.option("--host", default="127.0.0.1", show_default=True)
    @click.option("--port", default=5000, show_default=True, type=int)
    @click.option(
        "--provisioner/--no-provisioner",
        default=True,
        show_default=True,
        help="Run the reference provisioner; without it, play it by hand (provisioner-report).",
    )
    def dev(host, port, provisioner):
        """Run the whole system for development: database, reference data, demo accounts,
        a nats-server, the mail sender, the NATS relay and bridge, the reference provisioner
        and the web server."""
        if current_app.config["ENV"] == "production":
            raise click.ClickException("`dev` is for development; use wsgi.py in production.")
        prepare_database()
        app = current_app._get_current_object()
        logs.configure(app)  # after the migrations, whose alembic.ini sets logging its own way
        if app.config["PUBLIC_URL"] == config.Defaults.PUBLIC_URL:
            # Links in mail should reach this server, on whatever port it was given.
            app.config["PUBLIC_URL"] = f"http://{host}:{port}"
        if not app.config["NATS_URL"]:
            # On SIGTERM, exit through Python so that atexit stops the nats-server we start.
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            _, app.config["NATS_URL"] = embedded_nats.start(
                Path(app.instance_path) / "nats", app.config["EMBEDDED_NATS_PORT"]
            )
        click.echo(f"Database: {app.config['SQLALCHEMY_DATABASE_URI']}")
        click.echo(f"NATS:     {app.config['NATS_URL']} (stream {app.config['NATS_STREAM']})")
        click.echo("Demo accounts (passwords are new at every start):")
        for email, password, role in ensure_demo_accounts():
            click.echo(f"  {role:<13} {email:<22} {password}")
        if app.config["DEV_MAILBOX"]:
            click.echo(f"Mailbox:  http://{host}:{port}/dev/mailbox")
        wiring.start(app)
        worker = metrics = None
        if provisioner:
            # The reference provisioner, in this process for development: a separate system,
            # with its own settings (REGISTRY_PROVISIONER_* from the environment, as here).
            from provisioner.worker import ProvisionerWorker

            worker = ProvisionerWorker(app)
            worker.start()
            click.echo(f"Provisioner: GitOps repository {worker.repo.path}")
            metrics = _local_usage(app, worker)
        else:
            click.echo(
                f"Play the provisioner: REGISTRY_NATS_URL={app.config['NATS_URL']}"
                " flask --app registry provisioner-report PLATE CLUSTER STEP"
            )
        try:
            # run_simple, not app.run: the flask CLI ignores app.run() inside a command.
            run_simple(host, port, app, threaded=True)
        finally:
            # Stopped while the nats-server still runs (atexit stops it later): a relay
            # waiting for its next poll is woken, not waited for.
            if metrics is not None:
                metrics.stop()
            if worker is not None:
                worker.stop()
            wiring.stop()

    @app.cli.command("init-db")
    def init_db():
        """Bring the database to the latest migration and add missing reference data."""
        prepare_database()
        click.echo("Database is up to date.")

    @app.cli.command("worker")
    def worker():
        """Run the background work (mail sender, NATS relay and bridge) until stopped."""
        app = current_app._get_current_object()
        logs.configure(app)
        metrics_server.serve(app)  # with METRICS_PORT: the bridge's and the sender's counters
        wiring.start(app)
        click.echo("Worker running; Ctrl-C to stop.")
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
        wiring.stop()
