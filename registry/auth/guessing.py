"""Sign-in guessing: refused sign-ins counted per account and per client address, in the
registry's database, so that every process and every pod counts together.

An attempt is counted before its password is checked (a hit for each of its two keys) and taken
back when the password was right: only refusals count, and attempts made at the same moment
cannot all slip past the limit between a check and a count. While an attempt is counted, its
keys' rows are locked (in key order, so two attempts never wait for each other in a circle):
attempts on one key are counted one after another. The window slides: at most N hits within any
window, each hit counting for exactly one window.
"""

import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from ..config import rate_limit
from ..extensions import database_error, db
from ..timeutil import utcnow
from .models import RateLimit, RateLimitHit
from .services import normalise_email

log = logging.getLogger(__name__)

# Each process deletes the keys whose hits have all stopped counting at most this often.
SWEEP_SECONDS = 60
_next_sweep = 0.0  # time.monotonic() of this process's next sweep


class TooManyAttempts(Exception):
    """Past a limit: the attempt is refused without its password being looked at."""

    def __init__(self, who: str, wait: int):
        self.who = who  # "this account" or "your address"
        self.wait = wait  # seconds until an attempt is counted again
        super().__init__(f"too many attempts for {who}")


@dataclass(frozen=True)
class Attempt:
    """A counted attempt: its hits, one for each key."""

    hits: tuple[int, ...]

    def succeeded(self) -> None:
        """The password was right: the attempt was no guess, its hits are taken back."""
        with db.engine.begin() as connection:
            connection.execute(delete(RateLimitHit).where(RateLimitHit.id.in_(self.hits)))


def begin(email: str, address: str | None) -> Attempt:
    """Count a sign-in attempt for the account ``email`` from client ``address``, committed
    before the caller checks the password. Raises :class:`TooManyAttempts`, counting nothing,
    when either has had its limit of hits within the window (LOGIN_LIMIT_PER_ACCOUNT,
    LOGIN_LIMIT_PER_ADDRESS)."""
    config = current_app.config
    limits = {
        "account:" + normalise_email(email or "")[:254]: (
            "this account",
            rate_limit(config["LOGIN_LIMIT_PER_ACCOUNT"]),
        ),
        "address:" + (address or "")[:64]: (
            "your address",
            rate_limit(config["LOGIN_LIMIT_PER_ADDRESS"]),
        ),
    }
    now = utcnow()
    refusals: list[tuple[str, float]] = []
    hits: list[int] = []
    with db.engine.begin() as connection:
        for key in sorted(limits):
            who, (allowed, seconds) = limits[key]
            window = timedelta(seconds=seconds)
            counted = _lock_and_count(connection, key, now, window)
            if len(counted) >= allowed:
                # Free again once enough of the oldest hits have left the window.
                free_at = counted[len(counted) - allowed] + window
                refusals.append((who, (free_at - now).total_seconds()))
        if not refusals:
            for key in sorted(limits):
                hits.append(
                    connection.scalar(
                        insert(RateLimitHit).values(key=key, at=now).returning(RateLimitHit.id)
                    )
                )
    _sweep_now_and_then()
    if refusals:
        wait = max(seconds for _, seconds in refusals)
        raise TooManyAttempts(refusals[0][0], max(1, math.ceil(wait)))
    return Attempt(tuple(hits))


def _lock_and_count(connection, key: str, now: datetime, window: timedelta) -> list[datetime]:
    """Lock ``key``'s row (made if new) until the transaction ends, drop its hits that left
    the window, and return the times of those within it, oldest first."""
    upsert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[connection.dialect.name]
    # The write takes the row's lock on PostgreSQL and the database's write lock on SQLite:
    # another attempt on this key waits here until this one is committed.
    connection.execute(
        upsert(RateLimit)
        .values(key=key, expires_at=now + window)
        .on_conflict_do_update(index_elements=[RateLimit.key], set_={"expires_at": now + window})
    )
    connection.execute(
        delete(RateLimitHit).where(RateLimitHit.key == key, RateLimitHit.at <= now - window)
    )
    return list(
        connection.scalars(
            select(RateLimitHit.at).where(RateLimitHit.key == key).order_by(RateLimitHit.at)
        )
    )


def sweep(now: datetime | None = None) -> int:
    """Delete the keys whose hits have all stopped counting, and their hits; the number of keys
    deleted. The table holds only what was counted within the last window or so."""
    now = now or utcnow()
    with db.engine.begin() as connection:
        expired = select(RateLimit.key).where(RateLimit.expires_at <= now)
        connection.execute(delete(RateLimitHit).where(RateLimitHit.key.in_(expired)))
        return connection.execute(delete(RateLimit).where(RateLimit.expires_at <= now)).rowcount


def _sweep_now_and_then() -> None:
    global _next_sweep
    if time.monotonic() < _next_sweep:
        return
    _next_sweep = time.monotonic() + SWEEP_SECONDS
    try:
        sweep()
    except SQLAlchemyError as exc:
        # The next sweep deletes them: a sign-in is not refused for it.
        log.warning("could not delete expired sign-in counts: %s", database_error(exc))
