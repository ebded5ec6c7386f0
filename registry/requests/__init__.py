from flask import Blueprint

bp = Blueprint("requests", __name__)

from . import views  # noqa: E402, F401
