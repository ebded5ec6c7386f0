"""Seeding and reading the reference data."""

import time
from types import SimpleNamespace

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from . import data
from .models import Cluster, Ministry, QuotaOption


def seed() -> int:
    """Insert the reference data that is missing; leave rows that exist (they may have been edited).

    Returns the number of rows added.
    """
    added = 0
    existing = set(db.session.scalars(select(Cluster.name)))
    for order, (name, display, lab, default, paired) in enumerate(data.CLUSTERS):
        if name not in existing:
            db.session.add(
                Cluster(
                    name=name,
                    number=order + 1,
                    display_name=display,
                    is_lab=lab,
                    is_default=default,
                    paired_with=paired,
                    sort_order=order,
                )
            )
            added += 1
    existing = set(db.session.scalars(select(Ministry.code)))
    for code, name in data.MINISTRIES:
        if code not in existing:
            alliance = "JAG" if code in data.JAG_MINISTRIES else "none"
            db.session.add(Ministry(code=code, name=name, alliance=alliance))
            added += 1
    existing = set(db.session.scalars(select(QuotaOption.name)))
    for option in data.quota_options():
        if option["name"] not in existing:
            db.session.add(QuotaOption(**option))
            added += 1
    db.session.flush()
    return added


def requestable_clusters(include_lab: bool) -> list[Cluster]:
    query = select(Cluster).where(
        Cluster.active.is_(True), Cluster.name.not_in(data.REQUESTABLE_CLUSTERS_EXCLUDE)
    )
    if not include_lab:
        query = query.where(Cluster.is_lab.is_(False))
    return list(db.session.scalars(query.order_by(Cluster.sort_order)))


def default_cluster() -> str:
    return db.session.scalar(select(Cluster.name).where(Cluster.is_default.is_(True))) or "silver"


def get_cluster(name: str) -> Cluster | None:
    return db.session.get(Cluster, name)


def ministry_label(code: str, name: str) -> str:
    """How the registry names a ministry: "CITZ - Citizens' Services" (the form's choices, the
    emails, the queue)."""
    return f"{code} - {name}"


def ministries() -> list[Ministry]:
    return list(
        db.session.scalars(
            select(Ministry).where(Ministry.active.is_(True)).order_by(Ministry.code)
        )
    )


def quota_options_by_kind() -> dict[str, list[QuotaOption]]:
    options: dict[str, list[QuotaOption]] = {}
    for option in db.session.scalars(
        select(QuotaOption).order_by(QuotaOption.kind, QuotaOption.sort_order)
    ):
        options.setdefault(option.kind, []).append(option)
    return options


def default_quotas() -> dict[str, str]:
    return {
        kind: next((o.name for o in opts if o.is_default), opts[0].name)
        for kind, opts in quota_options_by_kind().items()
    }


# How long a process keeps the filter choices: reference data changes by hand, rarely.
CHOICES_SECONDS = 60


def _kept(name: str, read):
    """What ``read()`` returns, read at most every ``CHOICES_SECONDS`` per process (per app)."""
    cache = current_app.extensions.setdefault(f"reference.{name}", {"at": -1e9})
    now = time.monotonic()
    if now - cache["at"] > CHOICES_SECONDS:
        cache.update(at=now, value=read())
    return cache["value"]


def filter_choices() -> tuple[list, list]:
    """The clusters and ministries of All requests' filters, as plain values, read from the
    database at most every ``CHOICES_SECONDS`` per process instead of on every page."""

    def read():
        clusters = [
            SimpleNamespace(name=c.name, display_name=c.display_name)
            for c in requestable_clusters(include_lab=True)
        ]
        return clusters, [SimpleNamespace(code=m.code, name=m.name) for m in ministries()]

    return _kept("choices", read)


def kept_default_quotas() -> dict[str, str]:
    """default_quotas(), read at most every ``CHOICES_SECONDS`` per process."""
    return _kept("defaults", default_quotas)


def names() -> tuple[dict[str, str], dict[str, str]]:
    """Every cluster's display name and every ministry's "CODE - Name", by cluster name and by
    code (retired ones too: old requests name them), read at most every ``CHOICES_SECONDS``."""

    def read():
        clusters = dict(db.session.execute(select(Cluster.name, Cluster.display_name)).all())
        codes = select(Ministry.code, Ministry.name)
        labels = {code: ministry_label(code, name) for code, name in db.session.execute(codes)}
        return clusters, labels

    return _kept("names", read)
