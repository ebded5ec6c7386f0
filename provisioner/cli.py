"""``reference-provisioner``: run the provisioner until SIGTERM or Ctrl-C."""

import contextlib
import logging
import signal
import sys
import threading
import time

from . import workload
from .settings import Settings
from .worker import ProvisionerWorker

log = logging.getLogger("provisioner")


def main() -> int:
    settings = Settings.from_environment()
    logging.basicConfig(
        stream=sys.stderr,
        level=str(settings.config["LOG_LEVEL"]).upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    logging.getLogger("nats").setLevel(logging.WARNING)
    if not settings.config["NATS_URL"]:
        print("Set REGISTRY_NATS_URL.", file=sys.stderr)
        return 2
    worker = ProvisionerWorker(settings)
    worker.start()
    log.info("Provisioner running; GitOps repository %s. Ctrl-C to stop.", worker.repo.path)
    metrics = None
    if settings.config["PROVISIONER_METRICS_PORT"]:
        metrics = workload.MetricsServer(
            worker.repo,
            time.time,
            settings.config["PROVISIONER_METRICS_HOST"],
            int(settings.config["PROVISIONER_METRICS_PORT"]),
        ).start()
        log.info("Simulated workload of its namespaces at %s", metrics.url)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    if metrics is not None:
        metrics.stop()
    worker.stop()
    return 0
