"""The NATS side: the stream, the relay that publishes the outbox, the bridge that applies reports.

nats-py is asyncio: :class:`NatsWorker` runs one event loop in a daemon thread with two tasks.
Database work runs in that thread inside an app context per message, through the same service
functions the views call. Any number of workers may run at once: the relay claims outbox rows
(``FOR UPDATE SKIP LOCKED`` and a conditional claim), JetStream drops a re-published message by
its ``Nats-Msg-Id``, the bridge shares one durable pull consumer, and reports are idempotent.
"""

import asyncio
import contextlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

import nats
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy import select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm.exc import StaleDataError

from .. import outbox
from ..extensions import db
from ..timeutil import utcnow
from . import contract, services
from .models import MessageStatus, OutboxMessage

log = logging.getLogger(__name__)

# Set after a commit that wrote provisioning messages: the relay publishes at once.
wake = threading.Event()

CLAIM_SECONDS = 60
BATCH = 50


def stream_subjects(app) -> list[str]:
    """Every registry subject. The contract's subjects have no dots, so a NATS wildcard (which
    matches whole dot-separated tokens) cannot cover them: one subject per cluster, from the
    clusters table, and the status subject."""
    from ..reference.models import Cluster

    with app.app_context():
        clusters = db.session.scalars(select(Cluster.name).order_by(Cluster.number)).all()
    return [contract.provisioning_subject(c) for c in clusters] + [contract.STATUS_SUBJECT]


def stream_config(app) -> StreamConfig:
    """The stream that keeps every registry subject: requests to the provisioner and its reports."""
    return StreamConfig(
        name=app.config["NATS_STREAM"],
        subjects=stream_subjects(app),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=app.config["NATS_STREAM_MAX_AGE_DAYS"] * 86400,
        duplicate_window=app.config["NATS_DUPLICATE_WINDOW_SECONDS"],
    )


async def ensure_stream(js, app) -> None:
    """Create the stream, or bring an existing one's subjects and limits up to date."""
    config = stream_config(app)
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("Created stream %s", config.name)
    else:
        await js.update_stream(config)


# --- the relay: outbox -> JetStream -------------------------------------------------------


def claim_due(limit: int = BATCH) -> list[OutboxMessage]:
    ids = outbox.claim_due(OutboxMessage, limit, CLAIM_SECONDS)
    return [db.session.get(OutboxMessage, i) for i in ids]


def backoff(attempts: int, app) -> timedelta:
    base, ceiling = app.config["NATS_RETRY_BASE_SECONDS"], app.config["NATS_RETRY_MAX_SECONDS"]
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), ceiling))


async def publish(js, message: OutboxMessage, timeout: float = 5.0):
    """Publish one outbox message; JetStream keeps it once per Nats-Msg-Id."""
    return await js.publish(
        message.subject,
        json.dumps(message.payload).encode(),
        timeout=timeout,
        headers={"Nats-Msg-Id": message.message_id},
    )


async def relay_once(js, app) -> int:
    """Publish every due outbox message; mark each sent only after JetStream acknowledged it."""
    sent = 0
    with app.app_context():
        for message in claim_due():
            message.attempts += 1
            try:
                ack = await publish(js, message)
            except Exception as exc:  # any failure means "not stored yet"
                message.last_error = f"{type(exc).__name__}: {exc}"
                message.next_attempt_at = utcnow() + backoff(message.attempts, app)
                message.claimed_until = None
                db.session.commit()
                log.info("Provisioning message %s not published: %s", message.id, exc)
                break  # NATS is away: leave the rest for the next round
            message.status = MessageStatus.SENT.value
            message.sent_at = utcnow()
            message.stream_sequence = ack.seq
            message.last_error = None
            message.claimed_until = None
            db.session.commit()
            sent += 1
    return sent


def next_due_in(app, default: float) -> float:
    with app.app_context():
        return max(0.05, outbox.next_due_in(OutboxMessage, default))


# --- the bridge: JetStream -> database ----------------------------------------------------

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


def handle_report(app, data: bytes, subject: str | None = None, sequence=None, delivered=None):
    """Apply one status message in its own app context; returns what to tell JetStream.

    ACK once the transaction has committed (applied, or a harmless repeat). TERM once an
    unusable message is stored in the dead-letter table, so it is never redelivered. RETRY when
    the database could not be reached or another worker won a race: the message comes back.
    """
    with app.app_context():
        try:
            report = contract.parse_report(data)
            outcome = services.apply_report(report, wait_for_gaps=_patient(delivered))
            db.session.commit()
            log.debug("Report %s: %s", report.workflow, outcome)
            return ACK
        except services.StepGap:
            db.session.rollback()
            return WAIT
        except (contract.InvalidReport, services.Unprocessable) as exc:
            db.session.rollback()
            services.dead_letter("nats", data, str(exc), subject, sequence, delivered)
            db.session.commit()
            log.warning("Dead-lettered a status message: %s", exc)
            return TERM
        except (StaleDataError, OperationalError) as exc:
            db.session.rollback()
            log.info("Status message will be retried: %s", exc)
            return RETRY
        except SQLAlchemyError as exc:
            # The database refuses this report itself (a value it cannot store): set it aside.
            db.session.rollback()
            services.dead_letter(
                "nats", data, f"the database refused it: {exc}"[:500], subject, sequence, delivered
            )
            db.session.commit()
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
                services.dead_letter("nats", data, reason, subject, sequence, delivered)
                db.session.commit()
            except Exception:
                db.session.rollback()
                log.exception("Could not dead-letter the status message; it will be retried")
                return RETRY
            return TERM
        finally:
            db.session.remove()


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
    with app.app_context():
        try:
            locked = services.lock_for_reports(
                [r for r in parsed if isinstance(r, contract.StatusReport)]
            )
            for i in order:
                d, report = deliveries[i], parsed[i]
                try:
                    if isinstance(report, contract.InvalidReport):
                        raise report
                    services.apply_report(report, locked, wait_for_gaps=_patient(d.delivered))
                    verdicts[i] = ACK
                except services.StepGap:
                    verdicts[i] = WAIT  # nothing was written for it
                except (contract.InvalidReport, services.Unprocessable) as exc:
                    services.dead_letter(
                        "nats", d.data, str(exc), d.subject, d.sequence, d.delivered
                    )
                    log.warning("Dead-lettered a status message: %s", exc)
                    verdicts[i] = TERM
            db.session.commit()
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


async def consume(js, app, stopping: asyncio.Event, batch: int = 50) -> None:
    """Apply reports until ``stopping``, a batch per transaction."""
    config = bridge_consumer_config(app)
    # Create the durable, or bring an existing one's settings up to date (as ensure_stream does
    # for the stream): pull_subscribe alone binds to an existing consumer as it is.
    await js.add_consumer(app.config["NATS_STREAM"], config=config)
    subscription = await js.pull_subscribe_bind(
        durable=config.durable_name, stream=app.config["NATS_STREAM"]
    )
    while not stopping.is_set():
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


# --- the worker thread -------------------------------------------------------------------


async def sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stopping`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def connect(url: str, name: str, stopping: asyncio.Event):
    """Connect to NATS, retrying with backoff while it is away; None if stopped first. Once
    connected, the client reconnects by itself."""
    delay = 0.5
    while not stopping.is_set():
        try:
            return await nats.connect(
                url, name=name, connect_timeout=2, max_reconnect_attempts=-1, reconnect_time_wait=1
            )
        except Exception as exc:  # NATS away: keep trying
            log.warning("NATS at %s not reachable (%s); retrying in %.1fs", url, exc, delay)
            await sleep_unless(stopping, delay)
            delay = min(delay * 2, 15)
    return None


class NatsWorker(threading.Thread):
    """One event loop in a daemon thread: connects (and reconnects), ensures the stream, then
    runs the relay and the bridge until stopped."""

    def __init__(self, app, relay: bool = True, bridge: bool = True):
        super().__init__(name="nats-worker", daemon=True)
        self.app = app
        self.relay, self.bridge = relay, bridge
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self.ready = threading.Event()  # connected, stream ensured, consumer bound

    def run(self) -> None:
        asyncio.run(self._main())

    def stop(self, timeout: float = 10) -> None:
        if self.loop is not None and self.stopping is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)
        wake.set()
        self.join(timeout)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        nc = await connect(self.app.config["NATS_URL"], "product-registry", self.stopping)
        if nc is None:
            return
        js = nc.jetstream()
        tasks = []
        try:
            await self._retrying(lambda: ensure_stream(js, self.app))
            if self.relay:
                tasks.append(asyncio.create_task(self._relay_loop(js)))
            if self.bridge:
                tasks.append(asyncio.create_task(self._bridge_loop(js)))
            self.ready.set()
            await self.stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await nc.close()

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless(self.stopping, seconds)

    async def _retrying(self, make_coroutine) -> None:
        delay = 0.5
        while not self.stopping.is_set():
            try:
                return await make_coroutine()
            except Exception as exc:
                log.warning("NATS call failed (%s); retrying in %.1fs", exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, 15)

    async def _relay_loop(self, js) -> None:
        poll = self.app.config["NATS_RELAY_POLL_SECONDS"]
        while not self.stopping.is_set():
            wake.clear()
            try:
                while await relay_once(js, self.app):
                    pass
                wait = next_due_in(self.app, poll)
            except Exception:
                log.exception("Relay round failed")
                wait = poll
            # The commit hook sets a threading.Event; wait for it without blocking the loop.
            await asyncio.to_thread(wake.wait, wait)

    async def _bridge_loop(self, js) -> None:
        while not self.stopping.is_set():
            try:
                await consume(js, self.app, self.stopping)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Bridge stopped; starting again")
                await self._sleep(1)


def install_commit_hook() -> None:
    """Wake the relay after any commit that wrote provisioning messages."""
    outbox.wake_on_commit(services.OUTBOX_FLAG, lambda: wake.set())
