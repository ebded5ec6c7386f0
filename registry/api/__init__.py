"""/api/v1: a JSON API for scripts and pipelines, with the forms' rules, tokens per product,
ministry or everything, and an OpenAPI 3.1 document built from the schemas that validate."""

from flask import Blueprint

from ..extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Machine callers with a bearer token, not browsers with a session cookie: no CSRF token.
csrf.exempt(bp)

from . import pages, views  # noqa: E402, F401
