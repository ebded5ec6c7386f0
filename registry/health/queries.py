"""What the database says of the work in flight: outboxes that do not drain."""

from sqlalchemy import text

from ..extensions import db


def database_reachable() -> str | None:
    """None, or why the database cannot be used."""
    try:
        db.session.execute(text("SELECT 1"))
        db.session.rollback()
    except Exception as exc:  # any failure means not ready; the reason says which
        db.session.rollback()
        return f"database: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    return None
