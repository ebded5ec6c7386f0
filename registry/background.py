"""Background work of a serving process: the mail sender, the NATS relay and bridge, and on
PostgreSQL the listener that lets other processes' commits wake them.

Started by the serving entry points (wsgi.py, the ``dev`` and ``worker`` commands), never by
``create_app`` and at most once per process.
"""

import threading

from . import outbox
from .extensions import db
from .notifications.sender import SenderThread
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
            threads = [SenderThread(app), NatsWorker(app)]
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
