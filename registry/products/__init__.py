from flask import Blueprint

bp = Blueprint("products", __name__)

from . import views  # noqa: E402, F401
