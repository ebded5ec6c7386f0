"""Capacity over time: right-sizing offers (quotas a product does not use, offered back), the
cost report by ministry and month, the end of temporary increases, and the scheduler that runs
the checks of quotas over time."""

from flask import Blueprint

bp = Blueprint("capacity", __name__)

from . import cli, views  # noqa: E402, F401
