import re
from datetime import datetime

from .timeutil import utcnow


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


QUOTA_NAME = re.compile(
    r"^(cpu|memory)-request-([\d.]+)-limit-([\d.]+)$|^(storage|snapshot)-(\d+)$"
)


def quota(name: str) -> str:
    """'cpu-request-1-limit-2' as '1 core, limit 2'; the names follow the provisioner's scheme."""
    match = QUOTA_NAME.match(name or "")
    if not match:
        return name
    kind, request, limit, single, size = match.groups()
    if kind == "cpu":
        return f"{request} {'core' if request == '1' else 'cores'}, limit {limit}"
    if kind == "memory":
        return f"{request} GiB, limit {limit} GiB"
    if single == "storage":
        return f"{size} GiB"
    return f"{size} snapshots"


def register(app) -> None:
    app.add_template_filter(age, "age")
    app.add_template_filter(quota, "quota")
