"""The end of temporary increases, on a schedule (:mod:`registry.capacity.scheduler`): the team
is told ``TEMPORARY_WARN_DAYS`` before (with the change form to extend it, which is a new
request), and on the day the registry asks for the earlier quotas back in its own name,
approved at once and applied through the normal lifecycle (the provisioner, the timeline, the
emails). While another request of the product is open, the return waits for it and says so on
that request and the product page. A quota changed again since the increase is left as it is:
only what still holds the raised value goes back. The rules of an end day are in
registry/requests/temporary.py.

Any number of processes may run :func:`check`: each step claims its row with a conditional
update in its own transaction, so each warning and each return happens once.
"""

import logging
from datetime import date, timedelta

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from ..extensions import db
from ..notifications import services as notifications
from ..products import services as product_services
from ..requests import services as request_services
from ..requests import temporary
from ..requests.lifecycle import note
from ..requests.models import TemporaryIncrease, TemporaryOutcome
from ..timeutil import day, utcnow

log = logging.getLogger(__name__)


def check(on: date | None = None) -> dict[str, int]:
    """Warn the teams of increases ending within ``TEMPORARY_WARN_DAYS`` and give back those
    that ended by ``on`` (today). Returns how many of each this call did."""
    on = on or temporary.today()
    done = {"warned": 0, "reverted": 0, "waiting": 0, "changed": 0}
    warn_until = on + timedelta(days=current_app.config["TEMPORARY_WARN_DAYS"])
    open_ = TemporaryIncrease.outcome.is_(None)
    to_warn = db.session.scalars(
        select(TemporaryIncrease.id).where(
            open_,
            TemporaryIncrease.warned_at.is_(None),
            TemporaryIncrease.ends_on > on,
            TemporaryIncrease.ends_on <= warn_until,
        )
    ).all()
    ended = db.session.scalars(
        select(TemporaryIncrease.id)
        .where(open_, TemporaryIncrease.ends_on <= on)
        .order_by(TemporaryIncrease.ends_on, TemporaryIncrease.id)
    ).all()
    db.session.rollback()  # each step is a transaction of its own
    for increase_id in to_warn:
        if _step(_warn, increase_id, on):
            done["warned"] += 1
    for increase_id in ended:
        outcome = _step(_end, increase_id, on)
        if outcome:
            done[outcome] += 1
    return done


def _step(step, increase_id: int, on: date):
    try:
        result = step(increase_id, on)
        db.session.commit()
        return result
    except (IntegrityError, OperationalError, request_services.RequestError) as exc:
        # Another process was first, the database was busy, or the product moved on: the
        # next check looks again.
        db.session.rollback()
        log.info("Temporary increase %s left for the next check: %s", increase_id, exc)
        return None


def _claim(increase_id: int, **values) -> bool:
    """Set ``values`` on the increase if it is still open and the first of them still unset:
    of any number of processes, exactly one gets True."""
    column = getattr(TemporaryIncrease, next(iter(values)))
    claimed = db.session.execute(
        update(TemporaryIncrease)
        .where(
            TemporaryIncrease.id == increase_id,
            TemporaryIncrease.outcome.is_(None),
            column.is_(None),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return claimed.rowcount == 1


def _going_words(increase: TemporaryIncrease) -> str:
    return "; ".join(f"{g.label} back to {g.back_to}" for g in temporary.going_back(increase))


def _warn(increase_id: int, on: date) -> bool:
    if not _claim(increase_id, warned_at=utcnow()):
        return False
    increase = db.session.get(TemporaryIncrease, increase_id, populate_existing=True)
    request, product = increase.request, increase.product
    ends = day(increase.ends_on)
    note(request, "temporary", f"The team was told the increase ends on {ends}: "
         f"{_going_words(increase)}.")  # fmt: skip
    notifications.enqueue(
        "increase_ending",
        product.contact_emails,
        request,
        ends_on=ends,
        days_left=(increase.ends_on - on).days,
        going=temporary.going_back(increase),
        change_url=notifications.public_url("asking.change", plate=product.licence_plate),
        product_url=notifications.public_url("products.detail", plate=product.licence_plate),
    )
    return True


def _end(increase_id: int, on: date) -> str | None:
    increase = db.session.get(TemporaryIncrease, increase_id, populate_existing=True)
    if increase is None or increase.outcome is not None:
        return None
    product = increase.product
    ends = day(increase.ends_on)
    active = request_services.active_request(product)
    if active is not None:
        if increase.waiting_on_request_id != active.id:
            increase.waiting_on_request_id = active.id
            note(active, "temporary", f"The temporary increase of request"
                 f" #{increase.request_id} ended on {ends}; its quotas go back once this"
                 " request is finished.")  # fmt: skip
            return "waiting"
        return None
    live = product_services.live_data(product)
    namespaces = {env: dict(kinds) for env, kinds in live["namespaces"].items()}
    back = 0
    for field, values in increase.restore.items():
        _, env, kind = field.split(".")
        if namespaces[env][kind] == values["to"]:
            namespaces[env][kind] = values["from"]
            back += 1
    if not back:
        if not _claim(increase_id, ended_at=utcnow()):
            return None
        increase.outcome = TemporaryOutcome.CHANGED.value
        note(increase.request, "temporary", f"The temporary increase ended on {ends}; its"
             " quotas had all been changed since, so nothing went back.")  # fmt: skip
        return "changed"
    if not _claim(increase_id, ended_at=utcnow()):
        return None
    why = f"the temporary increase of request #{increase.request_id} ended on {ends}."
    returned = request_services.submit_return(product, namespaces, why[0].upper() + why[1:])
    increase.outcome = TemporaryOutcome.REVERTED.value
    increase.revert_request_id = returned.id
    increase.waiting_on_request_id = None
    note(increase.request, "temporary", f"The increase ended on {ends}: request"
         f" #{returned.id} gives back {_going_words(increase)}.")  # fmt: skip
    log.info("Temporary increase %s ended: request %s", increase_id, returned.id)
    return "reverted"
