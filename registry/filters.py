"""Template filters every page uses: times, quota and reference names, links in text. The
request workflow's own filters are in ``requests/filters.py``."""

import re
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

from flask import current_app
from markupsafe import Markup, escape

from .reference import quotas
from .reference import services as reference
from .timeutil import age, day


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

    return reference.names()[0].get(name or "", name or "")


def ministry_label(code: str | None) -> str:
    """'CITZ' as "CITZ - Citizens' Services": what the form called it."""

    return reference.names()[1].get(code or "", code or "")


def quota(name: str) -> str:
    return quotas.describe(name)


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


def monthly_cost(namespaces: dict) -> str:
    """{env: {kind: option}} as "CAD 118.40 a month" at COST_PER_MONTH; "" when no prices."""
    prices = current_app.config["COST_PER_MONTH"]
    if not prices or not namespaces:
        return ""
    total = quotas.monthly_cost(namespaces, prices)
    return f"{current_app.config['COST_CURRENCY']} {total:,.2f} a month"


def register(app) -> None:
    _zone(app.config["DISPLAY_TIMEZONE"])  # an unknown zone fails at start, not on a page
    app.add_template_filter(age, "age")
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(day, "day")
    app.add_template_filter(quota, "quota")
    app.add_template_filter(cluster_label, "cluster_label")
    app.add_template_filter(ministry_label, "ministry_label")
    app.add_template_filter(linkify, "linkify")
    app.add_template_filter(monthly_cost, "monthly_cost")
