"""The bridge: applies the provisioner's status reports from JetStream to the database.

Reports are read by one durable pull consumer that any number of bridges share, applied through
the same services as the HTTP callback, and acknowledged only after their transaction commits.
Each report succeeds or fails on its own: one that cannot be applied is set aside as a dead
letter with its reason, and the others go on.
"""

import asyncio
import logging
import time
from dataclasses import dataclass

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError

from .. import contract
from ..extensions import db
from ..metrics import instruments as metrics
from . import dead_letters as letters
from . import reports

log = logging.getLogger(__name__)

ACK, TERM, RETRY, WAIT = "ack", "term", "retry", "wait"
# A step that arrives before an earlier one of the same request (another bridge holds it, or it
# is being retried) is put back this many times, GAP_DELAY_SECONDS apart, before it is applied
# anyway: the earlier step then still gets onto the timeline. A provisioner that never sends some
# steps costs its reports at most this wait.
GAP_PATIENCE = 10
GAP_DELAY_SECONDS = 0.02
# A report that fails in a way no rule foresaw is tried this many times, then dead-lettered: with
# one report in flight at a time (see consume), it would otherwise hold up every report after it.
MAX_DELIVERIES = 5
# How often the bridge asks JetStream how many reports wait (for the readiness check).
PENDING_CHECK_SECONDS = 5


def handle_report(app, data: bytes, subject: str | None = None, sequence=None, delivered=None):
    """Apply one status message in its own app context; returns what to tell JetStream.

    ACK once the transaction has committed (applied, or a harmless repeat). TERM once an
    unusable message is stored in the dead-letter table, so it is never redelivered. RETRY when
    the database could not be reached or another worker won a race: the message comes back.
    """
    with app.app_context():
        try:
            report = contract.parse_report(data)
            outcome = reports.apply_report(report, wait_for_gaps=_patient(delivered))
            db.session.commit()
            _count(report, outcome)
            log.debug("Report %s: %s", report.workflow, outcome)
            return ACK
        except reports.StepGap:
            db.session.rollback()
            return WAIT
        except (contract.InvalidReport, reports.Unprocessable) as exc:
            db.session.rollback()
            letters.dead_letter("nats", data, str(exc), subject, sequence, delivered)
            db.session.commit()
            metrics.BRIDGE_DEAD_LETTERED.inc()
            log.warning("Dead-lettered a status message: %s", exc)
            return TERM
        except (StaleDataError, OperationalError) as exc:
            db.session.rollback()
            log.info("Status message will be retried: %s", exc)
            return RETRY
        except SQLAlchemyError as exc:
            # The database refuses this report itself (a value it cannot store): set it aside.
            db.session.rollback()
            letters.dead_letter(
                "nats", data, f"the database refused it: {exc}"[:500], subject, sequence, delivered
            )
            db.session.commit()
            metrics.BRIDGE_DEAD_LETTERED.inc()
            return TERM
        except Exception as exc:
            # A bug, or a report no rule foresaw: never let it stop the bridge. Retried a few
            # times in case it passes, then kept as a dead letter with what went wrong.
            db.session.rollback()
            if (delivered or 1) < MAX_DELIVERIES:
                log.exception("Status message failed (delivery %s); it will be retried", delivered)
                return RETRY
            log.exception("Status message failed %s times; dead-lettering it", delivered)
            reason = f"not applied after {delivered} deliveries: {type(exc).__name__}: {exc}"
            try:
                letters.dead_letter("nats", data, reason, subject, sequence, delivered)
                db.session.commit()
                metrics.BRIDGE_DEAD_LETTERED.inc()
            except Exception:
                db.session.rollback()
                log.exception("Could not dead-letter the status message; it will be retried")
                return RETRY
            return TERM
        finally:
            db.session.remove()


def _count(report: contract.StatusReport, outcome: reports.Outcome) -> None:
    """After the commit: one report applied (with its lag) or acknowledged unchanged."""
    if outcome.applied:
        metrics.report_applied(report.occurred_at)
    else:
        metrics.BRIDGE_IGNORED.inc()


def _patient(delivered: int | None) -> bool:
    """Whether a step that skips an earlier one should still wait for it."""
    return delivered is not None and delivered < GAP_PATIENCE


@dataclass
class Delivery:
    data: bytes
    subject: str | None = None
    sequence: int | None = None
    delivered: int | None = None


def handle_reports(app, deliveries: list[Delivery]) -> list[str]:
    """Apply a batch of status messages in one transaction (one commit, so one disk flush, for
    the batch); returns a verdict per message, in order.

    Reports are applied in request order (stable, so each request's own order is kept): every
    bridge then locks requests in the same order and two bridges cannot deadlock. A report that
    cannot be used is dead-lettered in the same transaction (apply_report refuses before it
    writes anything). If the database fails the batch (a lost lock race), every message is
    retried; if anything else fails it, each is handled on its own so the one at fault can be
    set aside.
    """
    if len(deliveries) == 1:
        d = deliveries[0]
        return [handle_report(app, d.data, d.subject, d.sequence, d.delivered)]
    verdicts: list[str] = [RETRY] * len(deliveries)
    outcomes: dict[int, reports.Outcome] = {}
    parsed: list[contract.StatusReport | contract.InvalidReport] = []
    for d in deliveries:
        try:
            parsed.append(contract.parse_report(d.data))
        except contract.InvalidReport as exc:
            parsed.append(exc)
    order = sorted(
        range(len(deliveries)),
        key=lambda i: parsed[i].request_id if isinstance(parsed[i], contract.StatusReport) else -1,
    )
    with app.app_context(), db.session.no_autoflush:
        try:
            locked = reports.lock_for_reports(
                [r for r in parsed if isinstance(r, contract.StatusReport)]
            )
            for i in order:
                d, report = deliveries[i], parsed[i]
                try:
                    if isinstance(report, contract.InvalidReport):
                        raise report
                    outcomes[i] = reports.apply_report(
                        report, locked, wait_for_gaps=_patient(d.delivered)
                    )
                    verdicts[i] = ACK
                except reports.StepGap:
                    verdicts[i] = WAIT  # nothing was written for it
                except (contract.InvalidReport, reports.Unprocessable) as exc:
                    letters.dead_letter(
                        "nats", d.data, str(exc), d.subject, d.sequence, d.delivered
                    )
                    log.warning("Dead-lettered a status message: %s", exc)
                    verdicts[i] = TERM
            db.session.commit()
            for i, outcome in outcomes.items():
                _count(parsed[i], outcome)
            metrics.BRIDGE_DEAD_LETTERED.inc(verdicts.count(TERM))
            return verdicts
        except (StaleDataError, OperationalError) as exc:
            db.session.rollback()
            log.info("Status batch will be retried: %s", exc)
            return [RETRY] * len(deliveries)
        except Exception:
            # The database refused one report, or applying one raised (a bug, a character the
            # database cannot encode): each is handled on its own, so that only the one at fault
            # is retried or set aside and the rest apply now, not after the ack wait.
            db.session.rollback()
            log.warning("Status batch failed; handling its reports one by one", exc_info=True)
        finally:
            db.session.remove()
    return [handle_report(app, d.data, d.subject, d.sequence, d.delivered) for d in deliveries]


def bridge_consumer_config(app) -> ConsumerConfig:
    """The bridges' shared durable pull consumer: many reports in flight, across any number of
    bridges. Order within a request is kept by the bridge itself: a step that skips one not yet
    seen waits a little for it (see :data:`GAP_PATIENCE`)."""
    durable = app.config["NATS_BRIDGE_DURABLE"]
    return ConsumerConfig(
        name=durable,
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30,
        max_deliver=-1,
        max_ack_pending=1000,
        filter_subject=contract.STATUS_SUBJECT,
    )


async def consume(js, app, stopping: asyncio.Event, batch: int = 50, on_pending=None) -> None:
    """Apply reports until ``stopping``, a batch per transaction. ``on_pending(n)`` is told,
    every few seconds, how many reports wait in the stream (the bridge's lag)."""
    config = bridge_consumer_config(app)
    # Create the durable, or bring an existing one's settings up to date (as ensure_stream does
    # for the stream): pull_subscribe alone binds to an existing consumer as it is.
    await js.add_consumer(app.config["NATS_STREAM"], config=config)
    subscription = await js.pull_subscribe_bind(
        durable=config.durable_name, stream=app.config["NATS_STREAM"]
    )
    checked = 0.0
    while not stopping.is_set():
        if on_pending is not None and time.monotonic() - checked > PENDING_CHECK_SECONDS:
            checked = time.monotonic()
            info = await subscription.consumer_info()
            on_pending(info.num_pending + info.num_ack_pending)
        try:
            messages = await subscription.fetch(batch=batch, timeout=1)
        except (NatsTimeout, TimeoutError):  # nats-py raises either when no report came
            continue
        deliveries = [
            Delivery(m.data, m.subject, m.metadata.sequence.stream, m.metadata.num_delivered)
            for m in messages
        ]
        # Acknowledged only now, after the batch's transaction has committed.
        for msg, verdict in zip(messages, handle_reports(app, deliveries), strict=True):
            meta = msg.metadata
            if verdict == ACK:
                await msg.ack()
            elif verdict == TERM:
                await msg.term()
            elif verdict == WAIT:
                await msg.nak(delay=GAP_DELAY_SECONDS)
            else:
                await msg.nak(delay=min(2**meta.num_delivered, 30) / 10)
