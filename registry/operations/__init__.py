"""Operations: how the registry is doing (weekly charts), the requests that are stuck, and the
reminders the super admins get of them (``stuck.py``), with the runbook they link to."""

from flask import Blueprint

bp = Blueprint("operations", __name__)

from . import views  # noqa: E402, F401
