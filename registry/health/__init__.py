"""Health: is this process alive (``/healthz``), can it do its work (``/readyz``), and is the
work of the whole system flowing (the super admins' banner, a waiting request's reason)."""

from flask import Blueprint

bp = Blueprint("health", __name__)

from . import views  # noqa: E402, F401
