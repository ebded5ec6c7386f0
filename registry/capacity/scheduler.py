"""The checks of quotas over time, in every process that runs the background work: the end of
temporary increases (each time), and right-sizing when a week has passed since it last ran
anywhere (``schedule_runs``: the process that moves the last run on does the week's work)."""

import logging
import threading
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from ..extensions import db
from ..timeutil import utcnow
from . import ends, savings
from .models import ScheduleRun

log = logging.getLogger(__name__)

RIGHTSIZING = "rightsizing"


def claim(name: str, every: timedelta, now: datetime) -> bool:
    """Whether this process runs ``name`` now: it last ran ``every`` ago or more, and no other
    process claimed it first. Commits the claim."""
    moved = db.session.execute(
        update(ScheduleRun)
        .where(ScheduleRun.name == name, ScheduleRun.last_run_at <= now - every)
        .values(last_run_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    if moved:
        db.session.commit()
        return True
    if db.session.get(ScheduleRun, name) is not None:
        db.session.rollback()
        return False
    try:
        db.session.add(ScheduleRun(name=name, last_run_at=now))
        db.session.commit()
        return True
    except IntegrityError:  # another process ran it first
        db.session.rollback()
        return False


def run_once(app, now: datetime | None = None) -> dict:
    """One round: temporary increases, then right-sizing if due. Returns what each did."""
    now = now or utcnow()
    done = {"ends": ends.check(now.date())}
    if app.config["USAGE_PROMETHEUS_URLS"]:
        every = timedelta(days=float(app.config["RIGHTSIZE_EVERY_DAYS"]))
        if claim(RIGHTSIZING, every, now):
            done["rightsizing"] = savings.check(now)
    return done


class Scheduler(threading.Thread):
    """Runs :func:`run_once` every ``SCHEDULE_CHECK_SECONDS``."""

    def __init__(self, app):
        super().__init__(name="capacity-scheduler", daemon=True)
        self.app = app
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                with self.app.app_context():
                    run_once(self.app)
            except Exception:
                log.exception("The checks of quotas over time failed")
            self.stopping.wait(float(self.app.config["SCHEDULE_CHECK_SECONDS"]))

    def stop(self) -> None:
        self.stopping.set()
