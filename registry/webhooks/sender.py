"""Sending webhook deliveries: woken by the commit that wrote them (here, or through the
PostgreSQL listener in every other process), polled as a safety net.

One bad endpoint never holds up others: each webhook has at most one delivery in flight, sent
from a pool of ``WEBHOOK_CONCURRENCY`` threads, so a receiver that hangs (until
``WEBHOOK_TIMEOUT_SECONDS``) or answers 500 keeps only its own product's events waiting. A
webhook's events go out in order: its oldest due delivery first. Each failure waits a backoff
(``WEBHOOK_RETRY_BASE_SECONDS`` doubled, at most ``WEBHOOK_RETRY_MAX_SECONDS``); after
``WEBHOOK_MAX_ATTEMPTS`` it is marked failed and can be sent again from the product page.
"""

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import requests
from flask import current_app
from sqlalchemy import or_, select, update

from .. import outbox
from ..extensions import db
from ..timeutil import utcnow
from . import services
from .models import DeliveryStatus, Webhook, WebhookDelivery

log = logging.getLogger(__name__)
wake = threading.Event()


def _due(now):
    return (
        WebhookDelivery.status == DeliveryStatus.PENDING.value,
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
    )


def claim(busy: set[int], room: int) -> list[tuple[int, int]]:
    """Claim the oldest due delivery of up to ``room`` webhooks not in ``busy``; returns
    (delivery id, webhook id) pairs. Commits the claims."""
    now = utcnow()
    lease = timedelta(seconds=float(current_app.config["WEBHOOK_TIMEOUT_SECONDS"]) * 3 + 30)
    rows = db.session.execute(
        select(WebhookDelivery.id, WebhookDelivery.webhook_id)
        .where(*_due(now), WebhookDelivery.webhook_id.not_in(busy or {0}))
        .order_by(WebhookDelivery.id)
        .limit(500)
    ).all()
    picked: dict[int, int] = {}
    for delivery_id, webhook_id in rows:
        if webhook_id not in picked and len(picked) < room:
            picked[webhook_id] = delivery_id
    claimed = []
    for webhook_id, delivery_id in picked.items():
        done = db.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, *_due(now))
            .values(claimed_until=now + lease)
        )
        if done.rowcount == 1:
            claimed.append((delivery_id, webhook_id))
    db.session.commit()
    return claimed


def deliver(delivery_id: int) -> bool:
    """One attempt at one delivery; records its outcome. True when delivered."""
    config = current_app.config
    delivery = db.session.get(WebhookDelivery, delivery_id)
    hook = db.session.get(Webhook, delivery.webhook_id)
    url, secret, message_id = hook.url, hook.secret, delivery.message_id
    body = json.dumps(delivery.payload, separators=(",", ":")).encode()
    refused = services.refused_target(url) if hook.active else "the webhook was removed"
    db.session.commit()  # no connection held while the receiver answers
    status, error = None, None
    if refused:
        error = f"not sent: {refused}"
    else:
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "ProductRegistry-Webhooks/1",
            "webhook-id": message_id,
            "webhook-timestamp": str(stamp),
            "webhook-signature": services.sign(secret, message_id, stamp, body),
        }
        try:
            answer = requests.post(
                url, data=body, headers=headers, allow_redirects=False,
                timeout=(3.0, float(config["WEBHOOK_TIMEOUT_SECONDS"])),
            )  # fmt: skip
            status = answer.status_code
            answer.close()
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
    delivery = db.session.get(WebhookDelivery, delivery_id, populate_existing=True)
    delivery.attempts += 1
    delivery.last_status_code = status
    delivery.claimed_until = None
    if status is not None and 200 <= status < 300:
        delivery.status = DeliveryStatus.DELIVERED.value
        delivery.delivered_at = utcnow()
        delivery.last_error = None
    else:
        delivery.last_error = error or f"the receiver answered {status}"
        if refused or delivery.attempts >= int(config["WEBHOOK_MAX_ATTEMPTS"]):
            delivery.status = DeliveryStatus.FAILED.value
        else:
            delivery.next_attempt_at = utcnow() + outbox.backoff(
                delivery.attempts,
                float(config["WEBHOOK_RETRY_BASE_SECONDS"]),
                float(config["WEBHOOK_RETRY_MAX_SECONDS"]),
            )
    db.session.commit()
    return delivery.status == DeliveryStatus.DELIVERED


class WebhookSender(threading.Thread):
    """Claims due deliveries, one per webhook at a time, and sends them from a pool."""

    def __init__(self, app):
        super().__init__(name="webhook-sender", daemon=True)
        self.app = app
        self.stopping = threading.Event()
        self.size = int(app.config["WEBHOOK_CONCURRENCY"])
        self.pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="webhook")
        self.lock = threading.Lock()
        self.busy: set[int] = set()

    def run(self) -> None:
        poll = float(self.app.config["WEBHOOK_POLL_SECONDS"])
        while not self.stopping.is_set():
            wake.clear()
            wait = poll
            try:
                with self.app.app_context():
                    with self.lock:
                        busy, room = set(self.busy), self.size - len(self.busy)
                    if room > 0:
                        for delivery_id, webhook_id in claim(busy, room):
                            with self.lock:
                                self.busy.add(webhook_id)
                            self.pool.submit(self._one, delivery_id, webhook_id)
                    wait = outbox.next_due_in(WebhookDelivery, poll)
            except Exception:
                log.exception("Webhook round failed")
                wait = 1.0
            wake.wait(timeout=max(wait, 0.05))

    def _one(self, delivery_id: int, webhook_id: int) -> None:
        try:
            with self.app.app_context():
                deliver(delivery_id)
        except Exception:
            log.exception("Webhook delivery %s failed", delivery_id)
        finally:
            with self.lock:
                self.busy.discard(webhook_id)
            wake.set()

    def stop(self) -> None:
        """Stop claiming; deliveries in flight end within WEBHOOK_TIMEOUT_SECONDS."""
        self.stopping.set()
        wake.set()
        self.pool.shutdown(wait=True, cancel_futures=True)


def install_commit_hook() -> None:
    outbox.wake_on_commit(services.OUTBOX_FLAG, wake.set)
