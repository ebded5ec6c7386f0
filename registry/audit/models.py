from datetime import datetime

from sqlalchemy import DDL, ForeignKey, Index, String, Text, event, func
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..timeutil import utcnow


class AuditEvent(db.Model):
    """One thing that happened, by whom, to what. Rows are only ever added: on PostgreSQL a
    trigger refuses UPDATE and DELETE; on SQLite one refuses UPDATE."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_action_id", "action", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now(), index=True)
    # The signed-in user, if any; ``actor`` keeps who it was (an email, "service account x",
    # "cli", or the email typed into a failed sign-in) even if the account changes later.
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor: Mapped[str] = mapped_column(String(254), default="")
    action: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(254), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str] = mapped_column(String(64), default="")


APPEND_ONLY_POSTGRES = DDL(
    """
    CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'audit_events is append-only';
    END;
    $$ LANGUAGE plpgsql;
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
        FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
    """
)
APPEND_ONLY_SQLITE = DDL(
    """
    CREATE TRIGGER audit_events_append_only BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END
    """
)
# For databases made with create_all; the migration creates the same triggers.
event.listen(
    AuditEvent.__table__, "after_create", APPEND_ONLY_POSTGRES.execute_if(dialect="postgresql")
)
event.listen(AuditEvent.__table__, "after_create", APPEND_ONLY_SQLITE.execute_if(dialect="sqlite"))
