"""The audit log's pages: the list for super admins and support, and its CSV export."""

import csv
import io

from flask import Response, current_app, request, stream_with_context

from ..access import Role, roles_required
from ..htmx import render
from ..pagination import page_number
from . import bp, queries
from .services import ACTIONS

# A cell a spreadsheet would read as a formula (CSV injection) gets a leading apostrophe.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_response(filename: str, header, rows) -> Response:
    """A CSV download streamed as ``rows`` (an iterator of cell lists) is read: a header line,
    then one line per row, every cell made formula-safe. The All requests export uses it too."""

    def lines():
        buffer = io.StringIO()
        writer = csv.writer(buffer)

        def line(cells) -> str:
            writer.writerow([csv_cell(c) for c in cells])
            text = buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            return text

        yield line(header)
        for row in rows:
            yield line(row)

    return Response(
        stream_with_context(lines()),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


@bp.get("/audit")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def events():
    """Who did what, newest first: sign-ins, roles, service accounts, decisions, re-sends."""
    filters = queries.AuditFilters.from_args(request.args)
    page = queries.events(filters, page_number(), current_app.config["PAGE_SIZE"])
    return render("audit/list.html", block="results", page=page, filters=filters, actions=ACTIONS)


@bp.get("/audit.csv")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def export():
    """The events the same filters find, as CSV, streamed as they are read."""
    filters = queries.AuditFilters.from_args(request.args)

    def rows():
        for row in queries.stream(filters):
            at = row.at.strftime("%Y-%m-%dT%H:%M:%SZ")
            yield [row.id, at, row.actor, row.action, row.target, row.detail, row.address]

    return csv_response("audit.csv", queries.EXPORT_COLUMNS, rows())
