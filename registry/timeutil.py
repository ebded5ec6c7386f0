"""Time in one place: aware UTC everywhere, stored as naive UTC so SQLite and PostgreSQL agree."""

from datetime import UTC, date, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def age(when: datetime | None) -> str:
    """'3 minutes ago', for stored naive-UTC times."""
    if when is None:
        return ""
    seconds = int((utcnow() - when).total_seconds())
    if seconds < 60:
        return "just now"
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "just now"


def day(value: date | None) -> str:
    """'Sun 20 Dec 2026': a calendar day, as a person reads it."""
    return f"{value:%a} {value.day} {value:%b %Y}" if value else ""
