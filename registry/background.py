"""Background work of a serving process: the mail sender, the NATS relay and bridge, the check
for stuck requests, and on PostgreSQL the listener that lets other processes' commits wake them.

Started by the serving entry points (wsgi.py, the ``dev`` and ``worker`` commands), never by
``create_app`` and at most once per process.
"""

import threading
from dataclasses import dataclass

from . import outbox
from .extensions import db
from .notifications import sender
from .notifications.sender import SenderThread
from .operations.stuck import StuckChecker
from .provisioning.worker import NatsWorker

_lock = threading.Lock()
_threads: list[threading.Thread] = []


def start(app) -> list[threading.Thread]:
    with _lock:
        if not _threads:
            if not app.config["NATS_URL"]:
                raise RuntimeError(
                    "REGISTRY_NATS_URL is not set: approved requests could not reach the "
                    "provisioner. Set it (the `dev` command starts a local nats-server)."
                )
            threads = [SenderThread(app), NatsWorker(app), StuckChecker(app)]
            with app.app_context():
                if db.engine.dialect.name == "postgresql":
                    threads.append(outbox.Listener(app))  # commits of other processes wake us
            for thread in threads:
                thread.start()
                _threads.append(thread)
        return list(_threads)


def stop() -> None:
    with _lock:
        for thread in _threads:
            thread.stop()
        for thread in _threads:
            thread.join(timeout=10)
        _threads.clear()


@dataclass(frozen=True)
class Status:
    nats_connected: bool
    nats_error: str | None
    bridge_pending: int | None
    smtp_reachable: bool | None


def status() -> Status | None:
    """How this process's background work stands; None where it runs none (a web process whose
    worker is a process of its own)."""
    worker = next((t for t in _threads if isinstance(t, NatsWorker)), None)
    if worker is None:
        return None
    return Status(
        nats_connected=bool(worker.link.reachable),
        nats_error=worker.link.error,
        bridge_pending=worker.bridge_pending,
        smtp_reachable=sender.server.reachable,
    )
