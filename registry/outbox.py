"""What the two outboxes (email, provisioning messages) share: claiming due rows, and waking
their sender as soon as a commit has written some.

A row is due when it is pending and its next attempt has come. A sender claims it with a lease
(``claimed_until``): ``FOR UPDATE SKIP LOCKED`` keeps PostgreSQL senders apart, and the claim's
UPDATE repeats the condition, so where rows cannot be locked ahead (SQLite) only the first of two
senders that selected the same row gets it.
"""

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session

from .extensions import db
from .timeutil import utcnow

# session.info flag -> what wakes the sender of that outbox
_wakers: dict[str, Callable[[], None]] = {}


def _due(model, now):
    return (
        model.status == "pending",
        model.next_attempt_at <= now,
        or_(model.claimed_until.is_(None), model.claimed_until < now),
    )


def claim_due(model, limit: int, lease_seconds: int, skip: set[int] = frozenset()) -> list[int]:
    """Claim up to ``limit`` due rows of ``model``, oldest first, but for the ids in ``skip``
    (those this round already tried); commits the claims."""
    now = utcnow()
    candidates = db.session.scalars(
        select(model.id)
        .where(*_due(model, now), model.id.not_in(skip))
        .order_by(model.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    claimed = []
    for row_id in candidates:
        result = db.session.execute(
            update(model)
            .where(model.id == row_id, *_due(model, now))
            .values(claimed_until=now + timedelta(seconds=lease_seconds))
        )
        if result.rowcount == 1:
            claimed.append(row_id)
    db.session.commit()
    return claimed


def backoff(attempts: int, base: float, ceiling: float) -> timedelta:
    """The wait before the next attempt: ``base`` doubled with each attempt, at most ``ceiling``."""
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), ceiling))


def due_now(model) -> int:
    """Make every pending row of ``model`` due now (its server is back); commits."""
    now = utcnow()
    result = db.session.execute(
        update(model)
        .where(model.status == "pending", model.next_attempt_at > now)
        .values(next_attempt_at=now)
    )
    db.session.commit()
    return result.rowcount


def next_due_in(model, default: float) -> float:
    """Seconds until the next pending row of ``model`` is due, at most ``default``."""
    due = db.session.scalar(
        select(model.next_attempt_at)
        .where(model.status == "pending")
        .order_by(model.next_attempt_at)
        .limit(1)
    )
    db.session.rollback()
    if due is None:
        return default
    return max(0.0, min(default, (due - utcnow()).total_seconds()))


def written(flag: str) -> None:
    """Mark the current transaction as having written rows of the outbox behind ``flag``."""
    db.session.info[flag] = True


def wake_on_commit(flag: str, wake: Callable[[], None]) -> None:
    """Call ``wake`` after any commit whose transaction was marked with ``flag``."""
    _wakers[flag] = wake
    if not event.contains(Session, "after_commit", _after_commit):
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)


def _after_commit(session) -> None:
    for flag, wake in _wakers.items():
        if session.info.pop(flag, False):
            wake()


def _after_rollback(session) -> None:
    for flag in _wakers:
        session.info.pop(flag, None)
