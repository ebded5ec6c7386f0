from flask import Blueprint, current_app, request

from ..access import Role, roles_required
from ..audit.views import csv_response
from ..htmx import render
from ..pagination import page_number
from ..reference import services as reference
from . import queries
from .models import RequestStatus, RequestType

# Finding requests: All requests, searched and filtered, and its CSV export (the staff's).
bp = Blueprint("finding", __name__)


def _filters() -> queries.HistoryFilters:
    """The filters on screen, from the query string; anything unknown is ignored."""
    args = request.args
    return queries.HistoryFilters(
        status=args.get("status", "") if args.get("status") in set(RequestStatus) else "",
        type=args.get("type", "") if args.get("type") in set(RequestType) else "",
        cluster=args.get("cluster", "")[:20],
        ministry=args.get("ministry", "")[:10],
        q=args.get("q", "")[:100],
    )


@bp.get("/history")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def all_requests():
    """Every request, newest first: support staff's view of what happened to any request."""
    filters = _filters()
    page = queries.history(filters, page_number(), current_app.config["PAGE_SIZE"])
    clusters, ministries = reference.filter_choices()
    return render(
        "finding/all_requests.html",
        block="results",
        page=page,
        filters=filters,
        statuses=list(RequestStatus),
        types=list(RequestType),
        clusters=clusters,
        ministries=ministries,
    )


def _when(value) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


@bp.get("/history.csv")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def export():
    """The requests the same filters find, as CSV, streamed as they are read (in chunks: the
    export of every request holds one chunk in memory, not the table)."""
    filters = _filters()

    def rows():
        for row in queries.history_rows(filters):
            yield [
                row.id,
                _when(row.created_at),
                row.kind,
                row.status,
                row.product,
                row.licence_plate,
                row.ministry,
                row.cluster,
                row.requested_by,
                row.decided_by,
                _when(row.decided_at),
                row.decision_comment,
                _when(row.updated_at),
            ]

    return csv_response("requests.csv", queries.EXPORT_COLUMNS, rows())
