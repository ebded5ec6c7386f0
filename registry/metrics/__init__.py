"""Metrics for Prometheus: ``/metrics`` (``views.py``, who may read it in ``access.py``), the
counters and histograms the code observes (``instruments.py``), the gauges read from the
database at scrape time (``collector.py``), and the port of processes that serve no web pages
(``server.py``: ``flask worker``)."""

from flask import Blueprint

bp = Blueprint("metrics", __name__)


def init_app(app) -> None:
    """Route and access settings (``registry.wiring`` connects what observes the lifecycle)."""
    from . import access, views  # noqa: F401

    access.configure(app)
    app.register_blueprint(bp)
