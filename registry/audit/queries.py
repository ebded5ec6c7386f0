"""Reading the audit log: one filter for the page and the CSV export."""

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select

from ..extensions import db
from ..pagination import paginate
from .models import AuditEvent
from .services import ACTIONS

# The page counts no further than this: past it, it says "more than".
COUNT_LIMIT = 1_000
# The export reads the log this many rows at a time.
EXPORT_CHUNK = 500


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value.strip()) if value and value.strip() else None
    except ValueError:
        return None


@dataclass
class AuditFilters:
    action: str = ""
    actor: str = ""
    since: date | None = None  # from this day on (UTC), inclusive
    until: date | None = None  # up to this day (UTC), inclusive

    @classmethod
    def from_args(cls, args) -> "AuditFilters":
        action = args.get("action", "")
        return cls(
            action=action if action in ACTIONS else "",
            actor=args.get("actor", "").strip()[:254],
            since=_date(args.get("from", "")),
            until=_date(args.get("to", "")),
        )

    def as_args(self) -> dict:
        """The filters as query arguments, for links (pages, the CSV export)."""
        args = {
            "action": self.action,
            "actor": self.actor,
            "from": self.since.isoformat() if self.since else "",
            "to": self.until.isoformat() if self.until else "",
        }
        return {k: v for k, v in args.items() if v}

    def where(self, query):
        if self.action:
            query = query.where(AuditEvent.action == self.action)
        if self.actor:
            query = query.where(
                func.lower(AuditEvent.actor).contains(self.actor.lower(), autoescape=True)
            )
        if self.since:
            query = query.where(AuditEvent.at >= datetime.combine(self.since, time.min))
        if self.until and self.until < date.max:  # up to the last day there is: no bound
            end = datetime.combine(self.until + timedelta(days=1), time.min)
            query = query.where(AuditEvent.at < end)
        return query


def events(filters: AuditFilters, page: int, per_page: int):
    """The events that match, newest first, one page."""
    query = filters.where(select(AuditEvent)).order_by(AuditEvent.id.desc())
    return paginate(query, page, per_page, count_limit=COUNT_LIMIT)


# The columns of the export, in order.
EXPORT_COLUMNS = ("id", "at", "actor", "action", "target", "detail", "address")


def stream(filters: AuditFilters):
    """Every event that matches, newest first, as rows of ``EXPORT_COLUMNS``, read from the
    database in chunks: walked by id (keyset) as plain rows, not objects the session keeps, so
    the export holds one chunk in memory however long the log is."""
    columns = [getattr(AuditEvent, name) for name in EXPORT_COLUMNS]
    before = None
    while True:
        query = filters.where(select(*columns)).order_by(AuditEvent.id.desc())
        if before is not None:
            query = query.where(AuditEvent.id < before)
        chunk = db.session.execute(query.limit(EXPORT_CHUNK)).all()
        yield from chunk
        if len(chunk) < EXPORT_CHUNK:
            return
        before = chunk[-1].id
