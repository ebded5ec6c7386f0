"""The operations page's numbers: the last 12 weeks of requests, decisions and provisioning.

Every query is bounded by the window (or by the pending queue): a few grouped statements, then
the weekly buckets in Python over one row per request of the window, which reads the same on
SQLite and PostgreSQL (their date functions differ). The provisioner's step durations are
computed in SQL (a window function over the window's events); their median on PostgreSQL too
(``percentile_cont``), on SQLite in Python.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Float, and_, case, cast, func, or_, select

from ..contract import STEP_LABELS, STEPS
from ..extensions import db
from ..requests.models import Request, RequestEvent, RequestStatus
from ..timeutil import utcnow

WEEKS = 12
# The step durations and failures are read from the timelines of the latest this many requests
# decided in the window (newest first through the primary key): about 20,000 events, so the page
# costs the same at any volume; a median of 2,000 requests' steps is as good as one of all.
STEP_SAMPLE = 2000

# Requests per week by what became of them, in the order the bars stack.
OUTCOMES = (
    ("provisioned", "Provisioned"),
    ("rejected", "Rejected"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
    ("open", "Pending or in flight"),
)
QUEUE_AGES = ("under 1 hour", "1 hour to 1 day", "1 to 2 days", "over 2 days")


def week_start(when: datetime) -> datetime:
    """Monday 00:00 UTC of the week ``when`` falls in."""
    day = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def week_label(start: datetime) -> str:
    return f"{start:%b} {start.day}"


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (PostgreSQL's ``percentile_cont``)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Week:
    start: datetime
    outcomes: dict[str, int]
    to_decision: list[float]  # seconds from submitted to a super admin's decision
    to_provisioned: list[float]  # seconds from approval to provisioned

    @property
    def label(self) -> str:
        return week_label(self.start)

    @property
    def submitted(self) -> int:
        return sum(self.outcomes.values())


@dataclass
class Comparison:
    """This week against the four before it."""

    what: str
    this_week: float | None
    before: float | None
    unit: str  # "duration" or "count"
    # Whether lower is better; None: neither (how many asked is no one's doing).
    lower_is_better: bool | None = True
    # The endpoint and anchor of the page that lists them, if one does.
    listed_at: tuple[str, str] | None = None

    @property
    def verdict(self) -> str:
        if self.this_week is None or self.before is None:
            return "not enough data"
        if self.before == 0:
            return "about the same" if self.this_week == 0 else "up"
        change = (self.this_week - self.before) / self.before
        if abs(change) < 0.1:
            return "about the same"
        if self.unit == "duration":
            return "faster" if change < 0 else "slower"
        return "up" if change > 0 else "down"

    @property
    def good(self) -> bool | None:
        """Whether the change is for the better (None: no change, or no telling)."""
        verdict = self.verdict
        if self.lower_is_better is None or verdict in ("not enough data", "about the same"):
            return None
        return verdict not in ("slower", "up")


@dataclass
class StepStat:
    step: str
    label: str
    count: int
    median_seconds: float | None


@dataclass
class Overview:
    now: datetime
    weeks: list[Week]
    queue_ages: list[int]
    steps: list[StepStat]
    failures: list[tuple[str, int]]  # (the step that failed, how many times)
    comparisons: list[Comparison]


def overview(now: datetime | None = None) -> Overview:
    now = now or utcnow()
    first = week_start(now) - timedelta(weeks=WEEKS - 1)
    weeks = [
        Week(first + timedelta(weeks=i), {key: 0 for key, _ in OUTCOMES}, [], [])
        for i in range(WEEKS)
    ]
    steps, failures = _provisioner_steps(first)
    return Overview(
        now=now,
        weeks=_weekly(weeks, first),
        queue_ages=queue_ages(now),
        steps=steps,
        failures=failures,
        comparisons=_compare(weeks),
    )


def _bucket(weeks: list[Week], first: datetime, when: datetime | None) -> Week | None:
    if when is None or when < first:
        return None
    index = (when - first).days // 7
    return weeks[index] if 0 <= index < len(weeks) else None


def _weekly(weeks: list[Week], first: datetime) -> list[Week]:
    """One row per request submitted, decided or provisioned in the window."""
    provisioned = RequestStatus.PROVISIONED.value
    rows = db.session.execute(
        select(
            Request.created_at,
            Request.decided_at,
            Request.decided_by_id,
            Request.status,
            Request.updated_at,
        ).where(
            or_(
                Request.created_at >= first,
                Request.decided_at >= first,
                # A provisioned request moves no more: its last change is when it was provisioned.
                and_(Request.status == provisioned, Request.updated_at >= first),
            )
        )
    ).all()
    outcome_of = {s: s for s in ("provisioned", "rejected", "failed", "cancelled")}
    for created_at, decided_at, decided_by_id, status, updated_at in rows:
        week = _bucket(weeks, first, created_at)
        if week is not None:
            week.outcomes[outcome_of.get(status, "open")] += 1
        if decided_by_id is not None and decided_at is not None:
            week = _bucket(weeks, first, decided_at)
            if week is not None:
                week.to_decision.append((decided_at - created_at).total_seconds())
        if status == provisioned and decided_at is not None:
            week = _bucket(weeks, first, updated_at)
            if week is not None:
                week.to_provisioned.append((updated_at - decided_at).total_seconds())
    return weeks


def queue_ages(now: datetime) -> list[int]:
    """Pending requests by how long they have waited (through the status, created_at index)."""
    created = Request.created_at
    bounds = (now - timedelta(hours=1), now - timedelta(days=1), now - timedelta(days=2))
    row = db.session.execute(
        select(
            func.coalesce(func.sum(case((created >= bounds[0], 1), else_=0)), 0),
            func.coalesce(
                func.sum(case((and_(created < bounds[0], created >= bounds[1]), 1), else_=0)), 0
            ),
            func.coalesce(
                func.sum(case((and_(created < bounds[1], created >= bounds[2]), 1), else_=0)), 0
            ),
            func.coalesce(func.sum(case((created < bounds[2], 1), else_=0)), 0),
        ).where(Request.status == RequestStatus.PENDING.value)
    ).one()
    return [int(n) for n in row]


def _seconds_between(later, earlier):
    if db.session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", later - earlier)
    return (func.julianday(later) - func.julianday(earlier)) * 86400.0


def _provisioner_steps(first: datetime) -> tuple[list[StepStat], list[tuple[str, int]]]:
    """The median time each step took (from the report before it on the request's timeline:
    the approval or re-send for the first step), and the steps that failed, in the window."""
    decided_in_window = (
        select(Request.id)
        .where(Request.decided_at >= first)
        .order_by(Request.id.desc())
        .limit(STEP_SAMPLE)
        .scalar_subquery()
    )
    event = RequestEvent
    timed = (
        select(
            event.step,
            event.to_status,
            event.created_at,
            func.lag(event.created_at)
            .over(partition_by=event.request_id, order_by=event.id)
            .label("previous_at"),
        )
        .where(event.kind == "transition", event.request_id.in_(decided_in_window))
        .subquery()
    )
    seconds = _seconds_between(timed.c.created_at, timed.c.previous_at)
    reported = and_(
        timed.c.step.is_not(None),
        timed.c.to_status != RequestStatus.FAILED.value,
        timed.c.created_at >= first,
        timed.c.previous_at.is_not(None),
    )
    medians: dict[str, tuple[int, float | None]] = {}
    if db.session.get_bind().dialect.name == "postgresql":
        for step, count, median in db.session.execute(
            select(
                timed.c.step,
                func.count(),
                func.percentile_cont(0.5).within_group(cast(seconds, Float)),
            )
            .where(reported)
            .group_by(timed.c.step)
        ):
            medians[step] = (count, float(median) if median is not None else None)
    else:
        durations: dict[str, list[float]] = {}
        for step, value in db.session.execute(select(timed.c.step, seconds).where(reported)):
            durations.setdefault(step, []).append(max(float(value), 0.0))
        medians = {step: (len(v), percentile(v, 0.5)) for step, v in durations.items()}
    steps = [
        StepStat(step, STEP_LABELS[step], *medians.get(step, (0, None)))
        for step in STEPS
        if step in medians
    ]

    # A failed event keeps the furthest step reported before it: the one that broke is the next.
    failed_after = db.session.execute(
        select(event.step, func.count())
        .where(
            event.kind == "transition",
            event.to_status == RequestStatus.FAILED.value,
            event.created_at >= first,
            event.request_id.in_(decided_in_window),
        )
        .group_by(event.step)
    ).all()
    counts: dict[str, int] = {}
    for step, count in failed_after:
        index = STEPS.index(step) + 1 if step in STEPS else 0
        broke = STEPS[min(index, len(STEPS) - 1)]
        counts[broke] = counts.get(broke, 0) + count
    failures = [(STEP_LABELS[s], counts[s]) for s in STEPS if s in counts]
    return steps, failures


def _compare(weeks: list[Week]) -> list[Comparison]:
    this, before = weeks[-1], weeks[-5:-1]

    def pooled(attribute):
        return [v for w in before for v in getattr(w, attribute)]

    def per_week(counts):
        return sum(counts) / len(counts) if counts else None

    return [
        Comparison(
            "Median time to a decision",
            percentile(this.to_decision, 0.5),
            percentile(pooled("to_decision"), 0.5),
            "duration",
        ),
        Comparison(
            "Median time from approval to provisioned",
            percentile(this.to_provisioned, 0.5),
            percentile(pooled("to_provisioned"), 0.5),
            "duration",
        ),
        Comparison(
            "Requests submitted",
            this.submitted,
            per_week([w.submitted for w in before]),
            "count",
            lower_is_better=None,
        ),
        Comparison(
            "Requests that failed",
            this.outcomes["failed"],
            per_week([w.outcomes["failed"] for w in before]),
            "count",
            listed_at=("review.queue", "needs-attention"),
        ),
    ]
