"""The outbox sender: delivers queued email after the commit, retries what failed for a while.

Any number of senders may run (gunicorn workers, pods): each claims a batch with a lease
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so two senders never hold the same message.
"""

import logging
import smtplib
import threading
from datetime import timedelta

from flask import current_app
from flask_mail import Connection, Message
from sqlalchemy.exc import OperationalError

from .. import outbox
from ..availability import Availability
from ..extensions import database_error, db
from ..metrics import instruments as metrics
from ..outbox.models import EmailStatus, OutboxEmail
from ..timeutil import utcnow
from .services import OUTBOX_FLAG

log = logging.getLogger(__name__)

BATCH = 20

# The SMTP server as this process last found it; says once in the log when it goes and comes.
server = Availability("SMTP server")

# Set after a commit that wrote outbox rows, so the sender runs at once instead of at its next poll.
wake = threading.Event()


class PermanentFailure(Exception):
    pass


class TemporaryFailure(Exception):
    pass


class ServerAway(TemporaryFailure):
    """The server could not be reached, or dropped the connection: nothing about this email."""


def classify(exc: Exception) -> type[Exception]:
    """Is an SMTP error worth retrying? 4xx is, 5xx is not; a server that cannot be reached is
    not the email's fault at all."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return PermanentFailure if codes and all(c >= 500 for c in codes) else TemporaryFailure
    if isinstance(exc, smtplib.SMTPResponseException) and not isinstance(
        exc, smtplib.SMTPConnectError
    ):
        return PermanentFailure if exc.smtp_code >= 500 else TemporaryFailure
    return ServerAway  # connection refused, timeouts, disconnects


def claim_seconds() -> int:
    """An email's claim covers one delivery (connect, converse, quit) with room to spare, so a
    sender that dies mid-send is replaced within a minute."""
    return 3 * int(current_app.config["MAIL_TIMEOUT"]) + 10


def backoff(attempts: int) -> timedelta:
    config = current_app.config
    return outbox.backoff(
        attempts, config["MAIL_RETRY_BASE_SECONDS"], config["MAIL_RETRY_MAX_SECONDS"]
    )


class _Connection(Connection):
    """Flask-Mail's connection with a timeout: a server that stops answering, or a host that
    drops packets, must not hold the sender (and its claim) forever."""

    def configure_host(self):
        smtp = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = smtp(self.mail.server, self.mail.port, timeout=current_app.config["MAIL_TIMEOUT"])
        host.set_debuglevel(int(self.mail.debug))
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


def _message(email: OutboxEmail) -> Message:
    message = Message(
        subject=email.subject,
        recipients=list(email.recipients),
        body=email.body_text,
        html=email.body_html,
    )
    message.msgId = message_id(email)
    return message


def message_id(email: OutboxEmail) -> str:
    """The same Message-ID for every attempt at one outbox row.

    A receiver can then drop a copy sent twice (a retry after the server took it but the answer
    was lost). The creation time keeps it unique should row ids start again (a new database).
    """
    domain = current_app.config["PUBLIC_URL"].split("//")[-1].split("/")[0].split(":")[0]
    return f"<outbox-{email.id}.{email.created_at:%Y%m%d%H%M%S%f}@{domain or 'registry'}>"


def _deliver(email: OutboxEmail) -> None:
    if current_app.config["DEV_MAILBOX"]:
        email.delivered_via = "mailbox"
        return
    try:
        with _Connection(current_app.extensions["mail"]) as connection:
            connection.send(_message(email))
    except (smtplib.SMTPException, OSError) as exc:
        # After a 421 smtplib closes the connection itself; Flask-Mail's QUIT on the way out then
        # raises SMTPServerDisconnected, which would hide the server's answer.
        cause = exc
        if isinstance(exc, smtplib.SMTPServerDisconnected) and isinstance(
            exc.__context__, smtplib.SMTPException | OSError
        ):
            cause = exc.__context__
        raise classify(cause)(f"{type(cause).__name__}: {cause}") from exc
    email.delivered_via = "smtp"


def deliver_due(limit: int = BATCH) -> int:
    """Send up to ``limit`` emails that are due, one claim each; returns how many were sent.
    Commits per email.

    A server that cannot be reached stops the round and costs no email an attempt: the email is
    tried again in ``MAIL_SERVER_RETRY_SECONDS``, so mail goes out soon after the server is back.
    An email that fails for itself (refused, or something no rule foresaw) waits its backoff
    while the others go on.
    """
    sent, tried = 0, set()
    for _ in range(limit):
        claimed = outbox.claim_due(OutboxEmail, 1, claim_seconds(), skip=tried)
        if not claimed:
            break
        tried.add(claimed[0])
        email = db.session.get(OutboxEmail, claimed[0])
        if email is None or email.status != EmailStatus.PENDING:
            continue
        failure = None  # why this attempt did not deliver (a metrics label), counted at commit
        try:
            _deliver(email)
        except ServerAway as exc:
            email.last_error = str(exc)
            email.next_attempt_at = utcnow() + timedelta(
                seconds=current_app.config["MAIL_SERVER_RETRY_SECONDS"]
            )
            email.claimed_until = None
            db.session.commit()
            metrics.EMAIL_ATTEMPTS_FAILED.labels(reason="server_unreachable").inc()
            server.down(str(exc))
            break
        except PermanentFailure as exc:
            failure = "permanent"
            email.attempts += 1
            email.status = EmailStatus.FAILED.value
            email.last_error = str(exc)
            server.up()
            log.warning("Email %s failed for good: %s", email.id, exc)
        except Exception as exc:  # a refusal worth retrying, or a bug: this email waits
            failure = "temporary" if isinstance(exc, TemporaryFailure) else "error"
            email.attempts += 1
            email.last_error = (
                f"{type(exc).__name__}: {exc}"[:2000]
                if not isinstance(exc, TemporaryFailure)
                else str(exc)
            )
            if email.attempts >= current_app.config["MAIL_MAX_ATTEMPTS"]:
                email.status = EmailStatus.FAILED.value
            else:
                email.next_attempt_at = utcnow() + backoff(email.attempts)
            if isinstance(exc, TemporaryFailure):
                server.up()
                log.info("Email %s not sent (attempt %s): %s", email.id, email.attempts, exc)
            else:
                log.exception("Email %s could not be sent", email.id)
        else:
            email.attempts += 1
            email.status = EmailStatus.SENT.value
            email.sent_at = utcnow()
            email.last_error = None
            server.up()
            sent += 1
        email.claimed_until = None
        via, gave_up = email.delivered_via or "smtp", email.status == EmailStatus.FAILED
        db.session.commit()
        if failure is None:
            metrics.EMAILS_SENT.labels(via=via).inc()
        else:
            metrics.EMAIL_ATTEMPTS_FAILED.labels(reason=failure).inc()
            if gave_up:
                metrics.EMAILS_FAILED.inc()
    return sent


class SenderThread(threading.Thread):
    """Runs :func:`deliver_due` whenever woken by a commit, or at the next due time."""

    def __init__(self, app):
        super().__init__(name="outbox-sender", daemon=True)
        self.app = app
        self.stopping = threading.Event()

    def run(self) -> None:
        poll = self.app.config["MAIL_POLL_SECONDS"]
        while not self.stopping.is_set():
            # Cleared before the round, so a commit during the round still wakes the next one.
            wake.clear()
            wait = poll
            try:
                with self.app.app_context():
                    while deliver_due():
                        pass
                    wait = outbox.next_due_in(OutboxEmail, poll)
                    if not server.reachable:
                        # Not before the server is worth trying again, even with mail due.
                        wait = max(wait, self.app.config["MAIL_SERVER_RETRY_SECONDS"])
            except OperationalError as exc:
                # The database went away or cut the connection (a restart, a failover): the
                # pool checks its next connection first; try again in a second.
                log.warning("Outbox sender round cut short: %s", database_error(exc))
                wait = 1
            except Exception:
                # A bug must not end the thread either: log, wait, try again.
                log.exception("Outbox sender round failed")
            wake.wait(timeout=wait)

    def stop(self) -> None:
        self.stopping.set()
        wake.set()


def install_commit_hook() -> None:
    """Wake the sender after any commit that wrote outbox rows."""

    outbox.wake_on_commit(OUTBOX_FLAG, lambda: wake.set())
