from datetime import datetime

from .reference import quotas
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


def quota(name: str) -> str:
    return quotas.describe(name)


def change_rows(request) -> list:
    """An edit's fields side by side: live when asked, asked for, granted."""
    from .requests import changes

    return changes.compare(request.original_data, request.requested_data, request.decision_data)


def diff(original: dict, requested: dict) -> list:
    """An edit's changes (field, from, to)."""
    from .requests import changes

    return changes.diff(original, requested)


def asked_for(request) -> str:
    """What a request asks for, to end a sentence: 'a change to River Permits'."""
    name = request.product.name
    return {
        "create": f"the new product {name}",
        "edit": f"a change to {name}",
        "delete": f"the deletion of {name}",
    }[request.type]


def register(app) -> None:
    app.add_template_filter(age, "age")
    app.add_template_filter(quota, "quota")
    app.add_template_filter(change_rows, "change_rows")
    app.add_template_filter(diff, "diff")
    app.add_template_filter(asked_for, "asked_for")
