from flask import current_app, request

from ..auth.access import roles_required
from ..auth.models import Role
from ..htmx import render
from ..reference import services as reference
from ..requests import queries
from ..requests.models import RequestStatus, RequestType
from . import bp


@bp.get("/history")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def all_requests():
    """Every request, newest first: support staff's view of what happened to any request."""
    args = request.args
    filters = queries.HistoryFilters(
        status=args.get("status", "") if args.get("status") in set(RequestStatus) else "",
        type=args.get("type", "") if args.get("type") in set(RequestType) else "",
        cluster=args.get("cluster", "")[:20],
        ministry=args.get("ministry", "")[:10],
        q=args.get("q", "")[:100],
    )
    page = queries.history(filters, args.get("page", 1, type=int), current_app.config["PAGE_SIZE"])
    clusters, ministries = reference.filter_choices()
    return render(
        "history/all_requests.html",
        block="results",
        page=page,
        filters=filters,
        statuses=list(RequestStatus),
        types=list(RequestType),
        clusters=clusters,
        ministries=ministries,
    )
