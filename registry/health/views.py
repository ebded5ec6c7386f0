import time

from flask import current_app, has_request_context, jsonify, request
from flask_login import current_user

from .. import wiring
from ..metrics import access
from ..outbox import backlog
from . import bp, queries


@bp.get("/healthz")
def healthz():
    """The process is alive and serving."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """The process can do its work: the database answers; where this process runs background
    work, NATS is connected and the bridge keeps up; no outbox is stuck. 503 when not.

    The checks and reasons (a database error, an outbox's last error) are for those who may
    read the metrics (``METRICS_TOKEN``, ``METRICS_ALLOWED_NETWORKS``); anyone else, a probe
    included, is told ready or not ready, and the status code."""
    reasons, warnings, checks = [], [], {}
    status = wiring.status()
    problem = queries.database_reachable()
    checks["database"] = problem or "ok"
    if problem:
        reasons.append(problem)
    else:
        stuck = [f"outbox: {backlog.sentence}" for backlog in backlog.stuck_backlogs()]
        checks["outbox"] = "stuck" if stuck else "ok"
        # A stuck outbox is the senders' problem. A process that runs them is not ready; a
        # web-only one still serves pages, so it says so but stays in its Service: otherwise one
        # NATS outage would take every web pod out of the Route at once.
        (reasons if status is not None else warnings).extend(stuck)
    if status is not None:
        checks["nats"] = "connected" if status.nats_connected else "not connected"
        if not status.nats_connected:
            reasons.append(f"nats: not connected ({status.nats_error})")
        checks["bridge_pending"] = status.bridge_pending
        limit = current_app.config["READY_BRIDGE_MAX_PENDING"]
        if status.bridge_pending is not None and status.bridge_pending > limit:
            reasons.append(f"bridge: {status.bridge_pending} reports waiting (more than {limit})")
        checks["smtp"] = "reachable" if status.smtp_reachable is not False else "not reachable"
    body = {"status": "not ready" if reasons else "ready"}
    if _may_read_the_details():
        body.update(checks=checks, reasons=reasons)
        if warnings:
            body["warnings"] = warnings
    return jsonify(body), 503 if reasons else 200


def _may_read_the_details() -> bool:
    verdict = access.verdict(
        current_app.config,
        current_app.extensions["metrics.networks"],
        request.remote_addr,
        request.headers.get("Authorization"),
    )
    return verdict == access.OK


@bp.app_context_processor
def operations_banner():
    """Super admins see, on every page, when the system's own work does not flow."""

    def stuck_backlogs():
        # Called by base.html only, so emails rendered inside a transaction never query here.
        if has_request_context() and getattr(current_user, "is_super_admin", False):
            return _recent_backlogs()
        return []

    return {"stuck_backlogs": stuck_backlogs}


BANNER_SECONDS = 5


def _recent_backlogs():
    """The banner's backlogs, asked of the database at most every few seconds per process: a
    backlog is minutes old before it shows, and every page a super admin opens would ask."""
    cache = current_app.extensions.setdefault("health.banner", {"at": -1e9, "backlogs": []})
    now = time.monotonic()
    if now - cache["at"] > BANNER_SECONDS:
        cache["backlogs"], cache["at"] = backlog.stuck_backlogs(), now
    return cache["backlogs"]
