"""A product's webhook: where its events go, the secret that signs them, and the outbox rows
written for them (registry/webhooks/sender.py sends them).

Events: ``request.submitted``, ``request.decided`` (by a super admin or the rules),
``request.provisioned``, ``request.failed`` and ``product.deleted``. Each is signed as the
Standard Webhooks specification says: ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of ``id.timestamp.body`` with the
secret's bytes).

A target must not be the registry's own network: a URL whose host is, or resolves to, a
loopback, link-local, private or otherwise reserved address is refused, when saved and again
before each delivery (a name may resolve elsewhere later), unless it falls in
``WEBHOOK_ALLOWED_NETWORKS``.
"""

import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
import uuid
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import select

from .. import outbox
from ..audit import services as audit
from ..extensions import db
from ..timeutil import utcnow
from .models import DeliveryStatus, Webhook, WebhookDelivery

OUTBOX_FLAG = "webhooks"
URL_MAX = 2000


class WebhookError(ValueError):
    """A webhook cannot be saved, or a delivery sent again; the message says why."""


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header of a delivery."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def refused_target(url: str) -> str | None:
    """Why ``url`` may not receive webhooks, or None if it may."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "That is not a URL."
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return "Give an http or https URL, with its host."
    if parts.scheme == "http" and not current_app.config["WEBHOOK_ALLOW_HTTP"]:
        return "Use https: events carry product details."
    if parts.username or parts.password:
        return "Leave names and passwords out of the URL: the signature proves the sender."
    try:
        found = socket.getaddrinfo(parts.hostname, port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return f"{parts.hostname} does not resolve."
    allowed = [ipaddress.ip_network(n) for n in current_app.config["WEBHOOK_ALLOWED_NETWORKS"]]
    for *_, address in found:
        ip = ipaddress.ip_address(address[0])
        if any(ip in network for network in allowed):
            continue
        if not ip.is_global or ip.is_multicast:
            return (
                f"{parts.hostname} is {ip}, an address on a private, loopback or link-local"
                " network: webhooks go to the outside only."
            )
    return None


def webhook_of(product_id: int) -> Webhook | None:
    return db.session.scalar(select(Webhook).where(Webhook.product_id == product_id))


def save(product, url: str, actor) -> tuple[Webhook, str | None]:
    """Set the product's webhook URL. A new webhook gets a secret (returned, shown once); a
    changed URL keeps its secret (None)."""
    url = (url or "").strip()
    if not url or len(url) > URL_MAX:
        raise WebhookError(f"Give the URL to send events to (at most {URL_MAX} characters).")
    why = refused_target(url)
    if why:
        raise WebhookError(why)
    hook = webhook_of(product.id)
    secret = None
    if hook is None:
        secret = new_secret()
        hook = Webhook(product=product, url=url, secret=secret, created_by_id=actor.id)
        db.session.add(hook)
    else:
        hook.url, hook.active = url, True
    db.session.flush()
    audit.record("webhook_set", target=f"product {product.licence_plate}", detail=url,
                 actor=actor)  # fmt: skip
    return hook, secret


def remove(product, actor) -> None:
    hook = webhook_of(product.id)
    if hook is None or not hook.active:
        raise WebhookError("This product has no webhook.")
    hook.active = False
    audit.record("webhook_removed", target=f"product {product.licence_plate}", actor=actor)


def send_again(delivery: WebhookDelivery) -> None:
    """A delivered or failed event, sent once more (a new attempt of the same message)."""
    if delivery.status == DeliveryStatus.PENDING:
        raise WebhookError("This event is still being sent.")
    if not delivery.webhook.active:
        raise WebhookError("The webhook was removed.")
    delivery.status = DeliveryStatus.PENDING.value
    delivery.next_attempt_at = utcnow()
    delivery.claimed_until = None
    outbox.written(OUTBOX_FLAG)


def deliveries(product_id: int, limit: int = 20) -> list[WebhookDelivery]:
    return list(
        db.session.scalars(
            select(WebhookDelivery)
            .join(Webhook)
            .where(Webhook.product_id == product_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def _event_types(request, event) -> list[str]:
    to, came_from = event.to_status, event.from_status
    if came_from is None:
        decided = ["request.decided"] if to == "approved" else []  # by the rules, at once
        return ["request.submitted", *decided]
    if came_from == "pending" and to in ("approved", "rejected"):
        return ["request.decided"]
    if to == "provisioned":
        return ["product.deleted"] if request.type == "delete" else ["request.provisioned"]
    if to == "failed" and came_from != "failed":
        return ["request.failed"]
    return []


def request_moved(request, event) -> None:
    """Listens to the lifecycle (wiring): an outbox row per event for the product's webhook,
    in the transaction of the move."""
    types = _event_types(request, event)
    if not types:
        return
    hook = webhook_of(request.product_id)
    if hook is None or not hook.active:
        return
    product = request.product
    for kind in types:
        db.session.add(
            WebhookDelivery(
                webhook=hook,
                message_id="msg_" + uuid.uuid4().hex,
                event_type=kind,
                payload={
                    "type": kind,
                    "timestamp": utcnow().isoformat(timespec="seconds") + "Z",
                    "data": {
                        "licence_plate": product.licence_plate,
                        "product": product.name,
                        "cluster": product.cluster_name,
                        "request_id": request.id,
                        "kind": request.type,
                        "status": event.to_status,
                        "note": event.note,
                        "request_url": f"/api/v1/requests/{request.id}",
                    },
                },
            )
        )
    outbox.written(OUTBOX_FLAG)
