from flask import Blueprint

bp = Blueprint("auth", __name__, cli_group=None)

from . import cli, service_account_views, views  # noqa: E402, F401
