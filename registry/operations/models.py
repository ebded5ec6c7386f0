from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow


class StuckReminder(db.Model):
    """One row per stuck request and threshold crossed: the unique key lets exactly one process,
    of any number, send the reminder."""

    __tablename__ = "stuck_reminders"
    __table_args__ = (UniqueConstraint("request_id", "key", name="uq_stuck_reminders_request_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"))
    # "decision" (pending too long), or "silent:<event id>" (no report for too long after that
    # event): a request stuck again after moving on gets a reminder again.
    key: Mapped[str] = mapped_column(String(60))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
