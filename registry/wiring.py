"""The one place that wires reactions: who listens to the request lifecycle, what runs after a
commit, and which threads a serving process runs. Features never connect themselves.

- :func:`connect_reactions` (``create_app``; doing it twice changes nothing): an approval
  publishes to the provisioner, every move and comment writes its email, decisions and
  provisioning are measured, and a commit that wrote outbox rows wakes their sender.
- :func:`start` / :func:`stop` (the serving entry points: wsgi.py, the ``dev`` and ``worker``
  commands; never ``create_app``, at most once per process): the mail sender, the NATS relay
  and bridge, the check for stuck requests, the checks of quotas over time, and on PostgreSQL
  the listener that lets other processes' commits wake them.
"""

import threading
from dataclasses import dataclass

from . import outbox
from .api import pages as api_pages
from .auth.signals import email_verified
from .capacity import savings
from .capacity.scheduler import Scheduler
from .extensions import db
from .metrics import instruments
from .notifications import sender
from .notifications import services as notifications
from .notifications.sender import SenderThread
from .operations import stuck
from .operations.stuck import StuckChecker
from .products import pages as product_pages
from .products import services as products
from .provisioning import messages as provisioning_messages
from .provisioning import relay
from .provisioning.worker import NatsWorker
from .requests import product_pages as request_parts
from .requests import review as review_queue
from .requests import temporary
from .requests.signals import request_moved, request_noted
from .webhooks import sender as webhook_sender
from .webhooks import services as webhooks
from .webhooks import views as webhook_pages


def connect_reactions() -> None:
    """Connect every reaction to the lifecycle, to accounts and to commits."""
    request_moved.connect(provisioning_messages.request_moved)
    request_moved.connect(notifications.request_moved)
    request_moved.connect(instruments.request_moved_listener)
    request_moved.connect(temporary.request_moved)
    request_moved.connect(webhooks.request_moved)
    request_noted.connect(notifications.request_noted)
    # A verified email makes the contacts that name it the account's (access follows accounts).
    email_verified.connect(products.link_contacts)
    # The product pages show the request workflow's parts: products import nothing from it.
    product_pages.parts.listing = request_parts.listing
    product_pages.parts.detail = _product_detail
    # The review queue's "Needs attention": failed and stuck requests, as Operations finds them.
    review_queue.needs_attention["find"] = stuck.attention
    instruments.observe_at_commit()
    sender.install_commit_hook()
    relay.install_commit_hook()
    webhook_sender.install_commit_hook()


def _product_detail(product, page: int = 1) -> dict:
    """The product page's parts: the request workflow's, and a saving on offer."""
    return {
        **request_parts.detail(product, page),
        **savings.page_part(product),
        **api_pages.product_part(product),
        **webhook_pages.product_part(product),
    }


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
            threads = [
                SenderThread(app),
                NatsWorker(app),
                StuckChecker(app),
                Scheduler(app),
                webhook_sender.WebhookSender(app),
            ]
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
