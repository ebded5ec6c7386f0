from flask import Blueprint

bp = Blueprint("provisioning", __name__, cli_group=None)

from . import cli, views  # noqa: E402, F401
