"""What the two outboxes (email, provisioning messages) share: claiming due rows, the backoff,
and waking their senders, in every process, as soon as a commit has written some.

In the committing process an after-commit hook wakes them. On PostgreSQL the transaction also
sends ``NOTIFY registry_outbox`` (delivered only if it commits), and a :class:`Listener` in each
process that runs senders wakes them too: web and worker can be processes apart. Polling stays
as the safety net.

A row is due when it is pending and its next attempt has come. A sender claims it with a lease
(``claimed_until``): ``FOR UPDATE SKIP LOCKED`` keeps PostgreSQL senders apart, and the claim's
UPDATE repeats the condition, so where rows cannot be locked ahead (SQLite) only the first of two
senders that selected the same row gets it.
"""

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import psycopg
from sqlalchemy import event, func, or_, select, update
from sqlalchemy.orm import Session

from ..availability import Availability
from ..extensions import db
from ..timeutil import utcnow

log = logging.getLogger(__name__)

# The PostgreSQL channel on which a commit that wrote outbox rows says so; the payload is the flag.
CHANNEL = "registry_outbox"

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
    """Mark the current transaction as having written rows of the outbox behind ``flag``: its
    commit wakes the senders of that outbox, here and (on PostgreSQL) in every other process."""
    session = db.session
    if session.info.get(flag):
        return
    session.info[flag] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_notify(CHANNEL, flag)))


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


def wake_all() -> None:
    for wake in _wakers.values():
        wake()


class Listener(threading.Thread):
    """PostgreSQL: ``LISTEN registry_outbox`` on a connection of its own, and wake this
    process's senders whenever another process commits outbox rows. After a lost connection it
    connects again and wakes every sender once, for what was committed meanwhile."""

    def __init__(self, app):
        super().__init__(name="outbox-listener", daemon=True)
        with app.app_context():
            url = db.engine.url.set(drivername="postgresql")
        self.conninfo = url.render_as_string(hide_password=False)
        self.stopping = threading.Event()
        self.listening = threading.Event()
        self.link = Availability("PostgreSQL notifications")

    def run(self) -> None:
        delay = 0.1
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.link.up()
                    self.listening.set()
                    wake_all()
                    delay = 0.1
                    while not self.stopping.is_set():
                        for note in conn.notifies(timeout=1.0):
                            wake = _wakers.get(note.payload)
                            if wake is not None:
                                wake()
            except psycopg.Error as exc:
                self.listening.clear()
                self.link.down(str(exc).strip() or type(exc).__name__)
                self.stopping.wait(delay)
                delay = min(delay * 2, 2.0)

    def stop(self) -> None:
        self.stopping.set()
