"""The audit log: an append-only record of who signed in, who changed whose role, which service
accounts were made and revoked, and every decision, re-send and mail retry."""

from flask import Blueprint

bp = Blueprint("audit", __name__)

from . import views  # noqa: E402, F401
