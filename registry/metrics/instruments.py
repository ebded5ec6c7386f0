"""The counters and histograms the registry observes as things happen.

Every name starts with ``registry_``; counters end in ``_total``, durations are in seconds. In
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set before this module is imported: gunicorn's
``gunicorn.conf.py`` does it) each process writes its values to a file of its own there and
``/metrics`` adds them up.

What a transaction does is observed only once it has committed: the lifecycle's listener queues
its observations on the session, and they are made after the commit, or dropped with a rollback
(the bridge rolls a batch back and applies its reports again one by one).
"""

from prometheus_client import Counter, Histogram, disable_created_metrics
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..extensions import db
from ..timeutil import utcnow

# No *_created series beside each counter and histogram: half the lines, nothing Prometheus needs.
disable_created_metrics()

MINUTE, HOUR, DAY = 60, 3600, 86400
KINDS = ("create", "edit", "delete")  # the requests' kinds (RequestType), label "kind"

# From a few minutes to two weeks: a review takes hours or days.
DECISION_BUCKETS = (
    *(m * MINUTE for m in (1, 5, 15, 30)),
    *(h * HOUR for h in (1, 2, 4, 8, 12)),
    *(d * DAY for d in (1, 2, 3, 5, 7, 14)),
)
# From a second (the reference provisioner) to days (a pipeline waiting on a person).
PROVISIONING_BUCKETS = (
    1,
    5,
    15,
    30,
    *(m * MINUTE for m in (1, 2, 5, 10, 30)),
    *(h * HOUR for h in (1, 2, 6, 12)),
    *(d * DAY for d in (1, 2, 7)),
)
# From milliseconds (the bridge keeps up) to an hour (the bridge was down).
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

TIME_TO_DECISION = Histogram(
    "registry_request_time_to_decision_seconds",
    "From a request's submission to a super admin's decision, observed when the decision is made.",
    ["kind", "decision"],
    buckets=DECISION_BUCKETS,
)
TIME_TO_PROVISIONED = Histogram(
    "registry_request_time_to_provisioned_seconds",
    "From a request's approval to provisioned (on every cluster), observed when it is provisioned.",
    ["kind"],
    buckets=PROVISIONING_BUCKETS,
)
BRIDGE_APPLIED = Counter(
    "registry_bridge_reports_applied",
    "Status reports of the provisioner the bridge applied to a request.",
)
BRIDGE_IGNORED = Counter(
    "registry_bridge_reports_ignored",
    "Status reports the bridge acknowledged without a change: a repeat, a step already passed.",
)
BRIDGE_DEAD_LETTERED = Counter(
    "registry_bridge_reports_dead_lettered",
    "Status reports the bridge could not use and kept as dead letters.",
)
BRIDGE_LAG = Histogram(
    "registry_bridge_report_lag_seconds",
    "From a status report's own time (occurred_at) to the bridge applying it.",
    buckets=LAG_BUCKETS,
)
EMAILS_SENT = Counter(
    "registry_emails_sent",
    "Emails delivered, by where to: smtp, or the development mailbox.",
    ["via"],
)
EMAILS_FAILED = Counter(
    "registry_emails_failed",
    "Emails given up on: refused for good by the server, or out of attempts.",
)
EMAIL_ATTEMPTS_FAILED = Counter(
    "registry_email_attempts_failed",
    "Attempts at an email that did not deliver it, by reason: server_unreachable (costs the"
    " email no attempt), temporary (4xx), permanent (5xx), error (anything else).",
    ["reason"],
)

# Every series that can exist, at 0 from the start: a rate over a series that appears only with
# its first event misses that event, and an alert cannot tell "none" from "not reported".
for _kind in KINDS:
    TIME_TO_PROVISIONED.labels(kind=_kind)
    for _decision in ("approved", "rejected"):
        TIME_TO_DECISION.labels(kind=_kind, decision=_decision)
for _via in ("smtp", "mailbox"):
    EMAILS_SENT.labels(via=_via)
for _reason in ("server_unreachable", "temporary", "permanent", "error"):
    EMAIL_ATTEMPTS_FAILED.labels(reason=_reason)

_QUEUE = "metrics.after_commit"


def after_commit(session, observe) -> None:
    """Call ``observe()`` once ``session``'s transaction commits; never if it rolls back."""
    session.info.setdefault(_QUEUE, []).append(observe)


def _committed(session) -> None:
    for observe in session.info.pop(_QUEUE, ()):
        observe()


def _rolled_back(session) -> None:
    session.info.pop(_QUEUE, None)


def observe_at_commit() -> None:
    """Run what ``after_commit`` queued once its transaction commits; doing it again changes
    nothing (``registry.wiring`` calls it)."""
    if not event.contains(Session, "after_commit", _committed):
        event.listen(Session, "after_commit", _committed)
        event.listen(Session, "after_rollback", _rolled_back)


def request_moved_listener(request, event) -> None:
    """The lifecycle's signal: a decision and a request provisioned are observed at commit."""
    from ..requests.models import RequestStatus  # here: the requests package imports much

    kind = str(request.type)
    now = utcnow()
    if event.from_status == RequestStatus.PENDING and event.to_status in (
        RequestStatus.APPROVED,
        RequestStatus.REJECTED,
    ):
        waited = (now - request.created_at).total_seconds()
        decision = "approved" if event.to_status == RequestStatus.APPROVED else "rejected"
        after_commit(
            db.session,
            lambda: TIME_TO_DECISION.labels(kind=kind, decision=decision).observe(max(waited, 0)),
        )
    elif event.to_status == RequestStatus.PROVISIONED and request.decided_at is not None:
        took = (now - request.decided_at).total_seconds()
        after_commit(
            db.session, lambda: TIME_TO_PROVISIONED.labels(kind=kind).observe(max(took, 0))
        )


def report_applied(occurred_at) -> None:
    """The bridge applied a report (after its commit); its lag if the report says when."""
    BRIDGE_APPLIED.inc()
    if occurred_at is not None:
        BRIDGE_LAG.observe(max((utcnow() - occurred_at).total_seconds(), 0))
