from flask import Blueprint

bp = Blueprint("reference", __name__, cli_group=None)

from . import cli  # noqa: E402, F401
