from flask import abort, current_app, request

from ..extensions import csrf
from . import access, bp, exposition


@bp.get("/metrics")
@csrf.exempt
def metrics():
    """Prometheus' scrape: for METRICS_TOKEN or METRICS_ALLOWED_NETWORKS only; no session."""
    verdict = access.verdict(
        current_app.config,
        current_app.extensions["metrics.networks"],
        request.remote_addr,
        request.headers.get("Authorization"),
    )
    if verdict != access.OK:
        abort(verdict)
    return exposition.latest(), 200, {"Content-Type": exposition.CONTENT_TYPE}
