"""Increases that end by themselves. A team asks, or the super admin who grants it sets, a day
on which a quota increase ends; when the change is applied, a :class:`TemporaryIncrease` holds
each raised quota and the value to go back to. ``TEMPORARY_WARN_DAYS`` before the day the team
is told, and on the day the registry asks for the earlier quotas back in its own name
(registry/capacity/ends.py, which runs on a schedule). This module holds the rules: what an
edit's end day changes, what it may be, and what an applied change does to the open increase.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select

from ..extensions import db
from ..reference import quotas
from ..reference.models import ENVIRONMENTS, QUOTA_KINDS
from ..timeutil import day, utcnow
from .changes import QUOTA_LABELS, Change
from .lifecycle import note
from .models import Request, RequestStatus, RequestType, TemporaryIncrease, TemporaryOutcome

# ``submit_edit(ends_on=KEEP)``: whatever end the product's open temporary increase has.
KEEP = object()
FIELD = "quota_ends_on"


def today() -> date:
    return utcnow().date()


def open_for(product_id: int) -> TemporaryIncrease | None:
    return db.session.scalar(
        select(TemporaryIncrease).where(
            TemporaryIncrease.product_id == product_id, TemporaryIncrease.outcome.is_(None)
        )
    )


def resolve(current: TemporaryIncrease | None, ends_on) -> date | None:
    """The end a change carries: ``KEEP`` is the open increase's (``current``) end, or none."""
    if ends_on is KEEP:
        return current.ends_on if current else None
    return ends_on


def change(current: TemporaryIncrease | None, ends_on: date | None) -> Change | None:
    """The change of end an edit makes to the open temporary increase, if it has one and the
    day differs: later, or none (the quotas kept for good), holds capacity longer (+1);
    sooner gives it back sooner (-1)."""
    if current is None or current.ends_on == ends_on:
        return None
    longer = ends_on is None or ends_on > current.ends_on
    return Change(
        "ends",
        FIELD,
        "End of the temporary increase",
        day(current.ends_on),
        day(ends_on) if ends_on else "none (the quotas are kept)",
        1 if longer else -1,
    )


def end_problem(ends_on: date | None, increases: bool, current) -> str | None:
    """Why an end day cannot be taken, or None: it is for a quota increase (or the open one),
    after today and within ``TEMPORARY_MAX_DAYS``."""
    if ends_on is None:
        return None
    if not increases and current is None:
        return "An end day is for a quota increase: no quota goes up in this change."
    if ends_on <= today():
        return "Choose a day after today for the quotas to go back."
    longest = current_app.config["TEMPORARY_MAX_DAYS"]
    if ends_on > today() + timedelta(days=longest):
        return f"A temporary increase lasts at most {longest} days; choose an earlier day."
    return None


def raised(request: Request) -> dict[str, dict[str, str]]:
    """The quotas ``request`` raised: field -> {"from": earlier option, "to": raised option}."""
    before = (request.original_data or {}).get("namespaces") or {}
    after = request.granted_data["namespaces"]
    found = {}
    for env in ENVIRONMENTS:
        for kind in QUOTA_KINDS:
            old, new = before.get(env, {}).get(kind), after[env][kind]
            if old and old != new and quotas.size(new) > quotas.size(old):
                found[f"namespaces.{env}.{kind}"] = {"from": old, "to": new}
    return found


def applied(request: Request) -> None:
    """An edit reached provisioned: start, move, merge or close the product's temporary
    increase as the request says. Called in the lifecycle's transaction (wiring)."""
    if request.type != RequestType.EDIT:
        return
    current = open_for(request.product_id)
    up = raised(request)
    ends_on = request.quota_ends_on
    if current is None:
        if ends_on and up:
            db.session.add(
                TemporaryIncrease(
                    product_id=request.product_id,
                    request_id=request.id,
                    ends_on=ends_on,
                    restore=up,
                )
            )
        return
    if ends_on is None:
        current.outcome, current.ended_at = TemporaryOutcome.KEPT.value, utcnow()
        note(request, "temporary", "The temporary increase is kept: its quotas no longer end.")
        return
    if ends_on == current.ends_on and not up:
        return  # another change (contacts, a decrease): the increase and its day hold
    restore = dict(current.restore)
    for field, values in up.items():
        earlier = restore.get(field, values)["from"]
        restore[field] = {"from": earlier, "to": values["to"]}
    current.outcome, current.ended_at = TemporaryOutcome.SUPERSEDED.value, utcnow()
    db.session.flush()  # one open increase per product: close this one before the next
    db.session.add(
        TemporaryIncrease(
            product_id=request.product_id,
            request_id=request.id,
            ends_on=ends_on,
            restore=restore,
            warned_at=current.warned_at if ends_on == current.ends_on else None,
        )
    )


@dataclass(frozen=True)
class Going:
    """One quota of an open temporary increase, in words for the product page."""

    label: str
    back_to: str
    now: str


def going_back(increase: TemporaryIncrease) -> list[Going]:
    rows = []
    for field, values in increase.restore.items():
        _, env, kind = field.split(".")
        rows.append(
            Going(
                f"{env} {QUOTA_LABELS[kind]}",
                quotas.describe(values["from"]),
                quotas.describe(values["to"]),
            )
        )
    return rows


def request_moved(request: Request, event) -> None:
    """Listens to the lifecycle (wiring): an applied change starts, moves or ends the open
    temporary increase."""
    if event.to_status == RequestStatus.PROVISIONED:
        applied(request)
