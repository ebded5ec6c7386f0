"""Signed webhooks per product: events of its requests sent to a URL its team sets, through an
outbox (written with the change, retried with backoff, woken across processes)."""

from flask import Blueprint

bp = Blueprint("webhooks", __name__)

from . import views  # noqa: E402, F401
