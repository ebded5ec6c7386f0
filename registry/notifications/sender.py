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

from .. import outbox
from ..extensions import db
from ..timeutil import utcnow
from .models import EmailStatus, OutboxEmail

log = logging.getLogger(__name__)

# Longer than a batch can take: BATCH emails at MAIL_TIMEOUT each, with room to spare.
CLAIM_SECONDS = 600
BATCH = 20

# Set after a commit that wrote outbox rows, so the sender runs at once instead of at its next poll.
wake = threading.Event()


class PermanentFailure(Exception):
    pass


class TemporaryFailure(Exception):
    pass


def classify(exc: Exception) -> type[Exception]:
    """Is an SMTP error worth retrying? 4xx and network trouble are; 5xx is not."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return PermanentFailure if codes and all(c >= 500 for c in codes) else TemporaryFailure
    if isinstance(exc, smtplib.SMTPResponseException):
        return PermanentFailure if exc.smtp_code >= 500 else TemporaryFailure
    return TemporaryFailure  # connection refused, timeouts, disconnects


def backoff(attempts: int) -> timedelta:
    base = current_app.config["MAIL_RETRY_BASE_SECONDS"]
    ceiling = current_app.config["MAIL_RETRY_MAX_SECONDS"]
    return timedelta(seconds=min(base * 2 ** max(attempts - 1, 0), ceiling))


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
    """Send the emails that are due; returns how many were sent. Commits per email."""
    sent = 0
    for email_id in outbox.claim_due(OutboxEmail, limit, CLAIM_SECONDS):
        email = db.session.get(OutboxEmail, email_id)
        if email is None or email.status != EmailStatus.PENDING:
            continue
        email.attempts += 1
        try:
            _deliver(email)
        except PermanentFailure as exc:
            email.status = EmailStatus.FAILED.value
            email.last_error = str(exc)
            log.warning("Email %s failed for good: %s", email.id, exc)
        except TemporaryFailure as exc:
            email.last_error = str(exc)
            if email.attempts >= current_app.config["MAIL_MAX_ATTEMPTS"]:
                email.status = EmailStatus.FAILED.value
            else:
                email.next_attempt_at = utcnow() + backoff(email.attempts)
            log.info("Email %s not sent (attempt %s): %s", email.id, email.attempts, exc)
        else:
            email.status = EmailStatus.SENT.value
            email.sent_at = utcnow()
            email.last_error = None
            sent += 1
        email.claimed_until = None
        db.session.commit()
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
            except Exception:
                # A database hiccup must not end the thread: log, wait, try again.
                log.exception("Outbox sender round failed")
            wake.wait(timeout=wait)

    def stop(self) -> None:
        self.stopping.set()
        wake.set()


def install_commit_hook() -> None:
    """Wake the sender after any commit that wrote outbox rows."""
    from .services import OUTBOX_FLAG

    outbox.wake_on_commit(OUTBOX_FLAG, lambda: wake.set())
