import re
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app
from markupsafe import Markup, escape

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


@lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def local_time(when: datetime | None) -> str:
    """'26 Nov 2026, 14:05 PST': a stored naive-UTC time in DISPLAY_TIMEZONE, with the zone."""
    if when is None:
        return ""
    zone = _zone(current_app.config["DISPLAY_TIMEZONE"])
    local = when.replace(tzinfo=UTC).astimezone(zone)
    return f"{local.day} {local:%b %Y, %H:%M} {local.tzname()}"


def cluster_label(name: str | None) -> str:
    """'silver' as 'Silver Hosting Tier': what the form called it."""
    from .reference import services as reference

    return reference.names()[0].get(name or "", name or "")


def ministry_label(code: str | None) -> str:
    """'CITZ' as "CITZ - Citizens' Services": what the form called it."""
    from .reference import services as reference

    return reference.names()[1].get(code or "", code or "")


def above_defaults(data: dict) -> list[str]:
    """A new product's quotas that are not the defaults, in words: 'prod CPU 2 cores, limit 4'
    (what a reviewer would otherwise have to open the whole request to see)."""
    from .reference import services as reference
    from .requests.changes import QUOTA_LABELS

    defaults = reference.kept_default_quotas()
    return [
        f"{env} {QUOTA_LABELS.get(kind, kind)} {quotas.describe(name)}"
        for env, kinds in (data or {}).get("namespaces", {}).items()
        for kind, name in kinds.items()
        if defaults.get(kind) not in (None, name)
    ]


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


_LINK = re.compile(r"https?://[^\s<>\"']+")


def linkify(text: str | None) -> Markup:
    """Text shown as text, with its http(s) addresses as links (a commit on the GitOps host).
    Everything else is escaped; a trailing full stop is not part of an address."""
    if not text:
        return Markup("")
    out, last = [], 0
    for match in _LINK.finditer(text):
        url = match.group(0).rstrip(".,;:)")
        out.append(escape(text[last : match.start()]))
        out.append(Markup('<a href="{0}" rel="noopener noreferrer">{0}</a>').format(url))
        last = match.start() + len(url)
    out.append(escape(text[last:]))
    return Markup("").join(out)


def register(app) -> None:
    _zone(app.config["DISPLAY_TIMEZONE"])  # an unknown zone fails at start, not on a page
    app.add_template_filter(age, "age")
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(quota, "quota")
    app.add_template_filter(above_defaults, "above_defaults")
    app.add_template_filter(cluster_label, "cluster_label")
    app.add_template_filter(ministry_label, "ministry_label")
    app.add_template_filter(change_rows, "change_rows")
    app.add_template_filter(diff, "diff")
    app.add_template_filter(asked_for, "asked_for")
    app.add_template_filter(linkify, "linkify")
