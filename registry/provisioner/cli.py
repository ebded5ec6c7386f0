import contextlib
import signal
import threading

import click
from flask import current_app

from .. import logs
from ..metrics import server as metrics_server
from . import bp
from .worker import ProvisionerWorker


@bp.cli.command("provisioner")
def provisioner():
    """Run the reference provisioner: NATS in, GitOps repository, NATS status reports out."""
    app = current_app._get_current_object()
    logs.configure(app)
    if not app.config["NATS_URL"]:
        raise click.ClickException("Set REGISTRY_NATS_URL.")
    metrics_server.serve(app)  # with METRICS_PORT
    worker = ProvisionerWorker(app)
    worker.start()
    click.echo(f"Provisioner running; GitOps repository {worker.repo.path}. Ctrl-C to stop.")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    worker.stop()
