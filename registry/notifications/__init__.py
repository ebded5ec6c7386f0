from flask import Blueprint

bp = Blueprint("notifications", __name__, cli_group=None)

from . import cli, views  # noqa: E402, F401
