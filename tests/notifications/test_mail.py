"""Email: who is told of each request event, and delivery through a real SMTP conversation.

The sink is aiosmtpd on a free port; mail is delivered by ``sender.deliver_due()`` as the outbox
sender does after a commit. Tests that need the server to answer otherwise than "250 OK" start a
``ScriptedSink`` on the same port.
"""

import re
import threading
import time
from collections import Counter
from datetime import timedelta
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from markupsafe import escape
from sqlalchemy import func, select, update

from registry.extensions import db
from registry.notifications import sender
from registry.outbox.models import EmailStatus, OutboxEmail
from registry.products.services import ContactData
from registry.requests import services as request_services
from registry.timeutil import utcnow
from tests import builders

PUBLIC_URL = "https://registry.example.test"
REVIEWERS = "reviewers@example.com"  # EXTRA_REVIEWER_ADDRESSES in the app fixture
SUBJECT_PREFIX = "[Product Registry] "


# --- reading what the sink received -------------------------------------------------------------


def parse(raw: bytes | str) -> EmailMessage:
    if isinstance(raw, bytes):
        return message_from_bytes(raw, policy=policy.default)
    return message_from_string(raw, policy=policy.default)


def received(smtp_sink) -> list[EmailMessage]:
    """What the conftest sink accepted, parsed, with the envelope recipients kept alongside."""
    messages = []
    for item in smtp_sink.messages:
        message = parse(item["data"])
        message.envelope_to = item["to"]
        messages.append(message)
    return messages


def to_addresses(message: EmailMessage) -> set[str]:
    return {address.addr_spec for address in message["To"].addresses}


def message_id(message: EmailMessage) -> str:
    # A long Message-ID is folded onto its own line; unfolding leaves the leading space.
    return message["Message-ID"].strip()


def text_part(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_part(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def subject(kind: str, product) -> str:
    label = {
        "received": "Request received",
        "awaiting_review": "Awaiting your review",
        "approved": "Approved",
        "rejected": "Rejected",
        "cancelled": "Cancelled",
    }[kind]
    return f"{SUBJECT_PREFIX}{label}: {product.name} ({product.licence_plate})"


def outbox(**filters) -> list[OutboxEmail]:
    """The outbox as the database has it now (other sessions may have changed it)."""
    db.session.expire_all()
    query = select(OutboxEmail).filter_by(**filters).order_by(OutboxEmail.id)
    return list(db.session.scalars(query))


def row_for(kind: str, request) -> OutboxEmail:
    (row,) = outbox(kind=kind, request_id=request.id)
    return row


def check_delivered(message: EmailMessage, row: OutboxEmail, request) -> None:
    """The message on the wire is the outbox row: recipients, subject, Message-ID, both parts."""
    assert sorted(message.envelope_to) == sorted(row.recipients)
    assert to_addresses(message) == set(row.recipients)
    assert message["Subject"] == row.subject
    assert re.search(rf"\boutbox-{row.id}\b", message_id(message)), message_id(message)
    assert message_id(message).endswith("@registry.example.test>")
    assert message.is_multipart()
    assert message.get_body(preferencelist=("plain",)).get_content_type() == "text/plain"
    assert message.get_body(preferencelist=("html",)).get_content_type() == "text/html"
    link = f"{PUBLIC_URL}/requests/{request.id}"
    assert link in text_part(message)
    assert f'href="{link}"' in html_part(message)


def team_of(request, requester) -> set[str]:
    return {c.email for c in request.product.contacts} | {requester.email}


# --- an SMTP server that answers as a test tells it ----------------------------------------------


class ScriptedSink:
    """aiosmtpd on ``port`` that refuses the RCPT of some addresses and answers DATA in turn.

    ``refuse_rcpt`` maps an address to the reply to its RCPT TO (every time); ``data_replies``
    are the answers to the next DATA commands, after which DATA is accepted. Both the refused
    and the accepted messages are kept, parsed.
    """

    def __init__(self, port: int, refuse_rcpt: dict | None = None, data_replies=()):
        self.refuse_rcpt = dict(refuse_rcpt or {})
        self.data_replies = list(data_replies)
        self.accepted: list[EmailMessage] = []
        self.refused: list[EmailMessage] = []
        sink = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                reply = sink.refuse_rcpt.get(address)
                if reply:
                    return reply
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                message = parse(envelope.content)
                message.envelope_to = list(envelope.rcpt_tos)
                if sink.data_replies:
                    sink.refused.append(message)
                    return sink.data_replies.pop(0)
                sink.accepted.append(message)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()


@pytest.fixture
def start_sink(smtp_port):
    """Starts a ScriptedSink on ``smtp_port`` when the test says; stops it at the end."""
    started = []

    def start(**script) -> ScriptedSink:
        sink = ScriptedSink(smtp_port, **script).start()
        started.append(sink)
        return sink

    yield start
    for sink in started:
        sink.stop()


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02):
    """Polls ``condition`` until it is true or ``timeout`` passes; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


# --- 1. who gets what ----------------------------------------------------------------------------


def test_submit_sends_received_to_the_team_and_awaiting_review_to_the_reviewers(
    mail_app, smtp_sink, owner, admin, other_admin
):
    request = builders.submit(
        owner, secondary_lead=ContactData("Sam", "Second", "Second.Lead@Example.com")
    )
    product = request.product
    owner_email, lead_email = product.contact_emails[:2]

    assert sender.deliver_due() == 2

    messages = {m["Subject"]: m for m in received(smtp_sink)}
    assert len(smtp_sink.messages) == 2
    team = {owner_email, lead_email, "second.lead@example.com", "owner@example.com"}
    assert team_of(request, owner) == team

    to_team = messages[subject("received", product)]
    check_delivered(to_team, row_for("received", request), request)
    assert to_addresses(to_team) == team
    assert "Olivia Owner asked for the new product" in text_part(to_team)

    to_reviewers = messages[subject("awaiting_review", product)]
    check_delivered(to_reviewers, row_for("awaiting_review", request), request)
    assert to_addresses(to_reviewers) == {"admin@example.com", "admin2@example.com", REVIEWERS}
    assert not to_addresses(to_reviewers) & team
    assert f"{PUBLIC_URL}/admin/queue" in text_part(to_reviewers)
    assert f'href="{PUBLIC_URL}/admin/queue"' in html_part(to_reviewers)

    # One Message-ID per outbox row.
    assert len({message_id(m) for m in messages.values()}) == 2
    assert {row.status for row in outbox()} == {EmailStatus.SENT}
    assert {row.delivered_via for row in outbox()} == {"smtp"}


def test_a_requester_who_is_a_contact_is_told_once(mail_app, smtp_sink):
    requester = builders.make_user(email="pat.owner@example.com", name="Pat Owner")
    request = builders.submit(requester, owner=ContactData("Pat", "Owner", "Pat.Owner@example.com"))

    assert sender.deliver_due() == 2

    messages = {m["Subject"]: m for m in received(smtp_sink)}
    to_team = messages[subject("received", request.product)]
    assert sorted(to_team.envelope_to) == sorted(request.product.contact_emails)
    assert len(to_team.envelope_to) == 2


def test_approval_is_sent_to_the_team(mail_app, smtp_sink, owner, admin):
    request = builders.submit(owner)
    assert sender.deliver_due() == 2
    request_services.decide(request.id, admin, approve=True)
    db.session.commit()

    assert sender.deliver_due() == 1

    message = received(smtp_sink)[-1]
    assert len(smtp_sink.messages) == 3
    assert message["Subject"] == subject("approved", request.product)
    check_delivered(message, row_for("approved", request), request)
    assert to_addresses(message) == team_of(request, owner)
    assert "Ada Admin approved the new product" in text_part(message)


def test_rejection_is_sent_to_the_team_with_the_comment(mail_app, smtp_sink, owner, admin):
    comment = "Quotas are too large for a pilot; see <the policy> & resubmit."
    request = builders.submit(owner)
    assert sender.deliver_due() == 2
    request_services.decide(request.id, admin, approve=False, comment=comment)
    db.session.commit()

    assert sender.deliver_due() == 1

    message = received(smtp_sink)[-1]
    assert len(smtp_sink.messages) == 3
    assert message["Subject"] == subject("rejected", request.product)
    check_delivered(message, row_for("rejected", request), request)
    assert to_addresses(message) == team_of(request, owner)
    assert comment in text_part(message)
    assert str(escape(comment)) in html_part(message)
    assert comment not in html_part(message)  # escaped, not markup


def test_cancellation_is_sent_to_the_team(mail_app, smtp_sink, owner):
    request = builders.submit(owner)
    assert sender.deliver_due() == 2
    request_services.cancel(request.id, owner)
    db.session.commit()

    assert sender.deliver_due() == 1

    message = received(smtp_sink)[-1]
    assert len(smtp_sink.messages) == 3
    assert message["Subject"] == subject("cancelled", request.product)
    check_delivered(message, row_for("cancelled", request), request)
    assert to_addresses(message) == team_of(request, owner)
    assert "Olivia Owner cancelled the new product" in text_part(message)


# --- 2. the mail server is down, then back -------------------------------------------------------


def test_mail_waits_while_the_server_is_down_and_goes_out_as_soon_as_it_is_back(
    mail_app, start_sink, owner, admin
):
    mail_app.config.update(MAIL_RETRY_BASE_SECONDS=60, MAIL_SERVER_RETRY_SECONDS=2)
    first = builders.submit(owner)
    second = builders.submit(owner)
    waiting = outbox()
    assert len(waiting) == 4

    # The server is down: one connection is tried, and no email loses an attempt to it.
    before = utcnow()
    assert sender.deliver_due() == 0
    after = utcnow()
    rows = outbox()
    tried = [row for row in rows if row.last_error]
    assert len(tried) == 1
    assert "Connection refused" in tried[0].last_error
    assert before + timedelta(seconds=2) <= tried[0].next_attempt_at
    assert tried[0].next_attempt_at <= after + timedelta(seconds=2)
    assert {(row.status, row.attempts, row.sent_at) for row in rows} == {
        (EmailStatus.PENDING, 0, None)
    }
    assert not sender.server.reachable

    # Back: every email goes at the next round (the one tried waits its 2 s, not a backoff).
    sink = start_sink()
    assert sender.deliver_due() == 3
    db.session.execute(update(OutboxEmail).values(next_attempt_at=utcnow()))
    db.session.commit()
    assert sender.deliver_due() == 1
    assert sender.deliver_due() == 0
    assert sender.server.reachable

    ids = Counter(message_id(message) for message in sink.accepted)
    assert len(sink.accepted) == 4
    assert set(ids.values()) == {1}
    rows = outbox()
    assert {(row.status, row.attempts, row.last_error) for row in rows} == {
        (EmailStatus.SENT, 1, None)
    }
    assert {m["Subject"] for m in sink.accepted} == {row.subject for row in rows}
    assert {row.request_id for row in rows} == {first.id, second.id}


def test_backoff_doubles_with_each_attempt(mail_app, start_sink, owner):
    mail_app.config.update(MAIL_RETRY_BASE_SECONDS=60, MAIL_RETRY_MAX_SECONDS=150)
    # The server answers, but puts each message off: a refusal of the email, worth a retry.
    start_sink(data_replies=["451 4.3.0 Try again later"] * 6)
    builders.submit(owner)
    for delay in (60, 120, 150):
        # The next attempt is set between these two instants plus the delay: bounds, not a
        # rounded wall-clock difference, so a slow attempt cannot fail the test.
        before = utcnow()
        assert sender.deliver_due() == 0
        after = utcnow()
        for row in outbox():
            assert before + timedelta(seconds=delay) <= row.next_attempt_at
            assert row.next_attempt_at <= after + timedelta(seconds=delay)
        db.session.execute(update(OutboxEmail).values(next_attempt_at=utcnow()))
        db.session.commit()
    assert {row.attempts for row in outbox()} == {3}


# --- 3. permanent and temporary refusals ---------------------------------------------------------


def test_a_refused_recipient_fails_the_email_for_good(mail_app, start_sink, owner):
    # No super admin yet: "awaiting review" goes to the extra reviewer address alone.
    sink = start_sink(refuse_rcpt={REVIEWERS: "550 5.1.1 No such mailbox"})
    request = builders.submit(owner)

    assert sender.deliver_due() == 1

    failed = row_for("awaiting_review", request)
    assert failed.recipients == [REVIEWERS]
    assert failed.status == EmailStatus.FAILED
    assert failed.attempts == 1
    assert "550" in failed.last_error
    assert "No such mailbox" in failed.last_error
    assert failed.sent_at is None
    assert row_for("received", request).status == EmailStatus.SENT
    assert [m["Subject"] for m in sink.accepted] == [subject("received", request.product)]

    # Failed is final: no sender tries it again by itself.
    assert sender.deliver_due() == 0
    assert row_for("awaiting_review", request).attempts == 1


def test_a_message_refused_at_data_fails_for_good(mail_app, start_sink, owner):
    sink = start_sink(data_replies=["554 5.7.1 Message rejected as spam"])
    request = builders.submit(owner)

    assert sender.deliver_due() == 1

    # Rows are sent in order: the first, "received", met the refusal.
    failed = row_for("received", request)
    assert failed.status == EmailStatus.FAILED
    assert "554" in failed.last_error
    assert "rejected as spam" in failed.last_error
    assert row_for("awaiting_review", request).status == EmailStatus.SENT
    assert [m["Subject"] for m in sink.refused] == [failed.subject]
    assert len(sink.accepted) == 1


@pytest.mark.parametrize(
    "script",
    [
        pytest.param({"data_replies": ["451 4.3.0 Try again later"]}, id="data"),
        pytest.param({"refuse_rcpt": {REVIEWERS: "450 4.2.1 Mailbox busy"}}, id="rcpt"),
    ],
)
def test_a_temporary_refusal_keeps_the_email_for_a_retry(mail_app, start_sink, owner, script):
    mail_app.config["MAIL_RETRY_BASE_SECONDS"] = 60
    sink = start_sink(**script)
    request = builders.submit(owner)

    assert sender.deliver_due() == 1

    (waiting,) = outbox(status=EmailStatus.PENDING.value)
    assert waiting.request_id == request.id
    assert waiting.attempts == 1
    assert re.search(r"\b45[01]\b", waiting.last_error)
    assert waiting.next_attempt_at > utcnow() + timedelta(seconds=50)

    # The server recovers; the next attempt once due delivers it.
    sink.refuse_rcpt.clear()
    db.session.execute(update(OutboxEmail).values(next_attempt_at=utcnow()))
    db.session.commit()
    assert sender.deliver_due() == 1
    again = outbox(id=waiting.id)[0]
    assert (again.status, again.attempts, again.last_error) == (EmailStatus.SENT, 2, None)
    assert [m["Subject"] for m in sink.accepted].count(waiting.subject) == 1


def test_a_resent_email_keeps_its_message_id(mail_app, start_sink, owner):
    """A receiver can drop a second copy only if every attempt carries the same Message-ID."""
    sink = start_sink(data_replies=["451 4.3.0 Try again later"])
    builders.submit(owner)

    assert sender.deliver_due() == 1
    assert sender.deliver_due() == 1  # retry base is 0 in tests: due at once

    (refused,) = sink.refused
    (resent,) = [m for m in sink.accepted if m["Subject"] == refused["Subject"]]
    assert message_id(resent) == message_id(refused)


def test_too_many_temporary_failures_end_in_failed(mail_app, start_sink, owner):
    mail_app.config["MAIL_MAX_ATTEMPTS"] = 3
    sink = start_sink(refuse_rcpt={REVIEWERS: "421 4.7.0 Too many connections"})
    request = builders.submit(owner)

    assert sender.deliver_due() == 1  # "received" goes through
    assert row_for("awaiting_review", request).status == EmailStatus.PENDING
    assert sender.deliver_due() == 0
    row = row_for("awaiting_review", request)
    assert (row.status, row.attempts) == (EmailStatus.PENDING, 2)
    assert sender.deliver_due() == 0
    row = row_for("awaiting_review", request)
    assert (row.status, row.attempts) == (EmailStatus.FAILED, 3)
    assert "421" in row.last_error
    assert sender.deliver_due() == 0
    assert row_for("awaiting_review", request).attempts == 3
    assert len(sink.accepted) == 1


# --- 4. the outgoing mail page and retrying a failed email ---------------------------------------


def outgoing_row(page: str, email_id: int) -> str | None:
    match = re.search(rf"<tr>\s*<td[^>]*>{email_id}</td>.*?</tr>", page, re.DOTALL)
    return match.group(0) if match else None


def test_a_super_admin_retries_a_failed_email(client, mail_app, start_sink, owner, admin, support):
    sink = start_sink(data_replies=["554 5.7.1 Message rejected as spam"])
    request = builders.submit(owner)
    assert sender.deliver_due() == 1
    failed = row_for("received", request)
    sent = row_for("awaiting_review", request)
    assert failed.status == EmailStatus.FAILED

    # Support sees the outgoing mail, but may not retry.
    builders.login(client, support)
    page = client.get("/admin/mail?status=failed").get_data(as_text=True)
    assert outgoing_row(page, failed.id) is not None
    assert "Retry" not in outgoing_row(page, failed.id)
    response = builders.post(client, f"/admin/mail/{failed.id}/retry")
    assert response.status_code == 403
    assert row_for("received", request).status == EmailStatus.FAILED
    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})

    builders.login(client, admin)
    response = client.get("/admin/mail?status=failed")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    row = outgoing_row(page, failed.id)
    assert 'class="badge badge-failed"' in row
    assert failed.subject in row
    assert "rejected as spam" in row
    assert "Retry" in row
    assert outgoing_row(page, sent.id) is None
    page = client.get("/admin/mail?status=sent").get_data(as_text=True)
    assert 'class="badge badge-sent"' in outgoing_row(page, sent.id)
    assert outgoing_row(page, failed.id) is None
    page = client.get("/admin/mail").get_data(as_text=True)
    assert outgoing_row(page, failed.id) is not None
    assert outgoing_row(page, sent.id) is not None

    response = builders.post(client, f"/admin/mail/{failed.id}/retry?status=failed")
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/mail?status=failed")
    retried = row_for("received", request)
    assert retried.status == EmailStatus.PENDING
    assert retried.next_attempt_at <= utcnow()
    page = client.get("/admin/mail?status=pending").get_data(as_text=True)
    assert 'class="badge badge-pending"' in outgoing_row(page, failed.id)

    assert sender.deliver_due() == 1
    delivered = row_for("received", request)
    assert delivered.status == EmailStatus.SENT
    assert delivered.last_error is None
    assert [m["Subject"] for m in sink.accepted].count(failed.subject) == 1
    assert sender.deliver_due() == 0

    # Only a failed email can be retried; an unknown one is not found.
    response = builders.post(client, f"/admin/mail/{failed.id}/retry", follow_redirects=True)
    assert "Only a failed email can be retried." in response.get_data(as_text=True)
    assert row_for("received", request).status == EmailStatus.SENT
    assert builders.post(client, "/admin/mail/999999/retry").status_code == 404


def test_an_ordinary_user_cannot_see_outgoing_mail(client, app, owner):
    builders.login(client, owner)
    assert client.get("/admin/mail").status_code == 403


# --- 5. two senders at once ----------------------------------------------------------------------


def test_two_senders_deliver_each_email_exactly_once(mail_app, smtp_sink, owner):
    for _ in range(15):
        builders.submit(owner)
    assert len(outbox(status=EmailStatus.PENDING.value)) == 30

    start = threading.Barrier(2)
    errors: list[BaseException] = []
    sent_by: dict[str, int] = {}

    def pending() -> int:
        count = db.session.scalar(
            select(func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.status == EmailStatus.PENDING.value)
        )
        db.session.rollback()
        return count

    def run(name: str) -> None:
        try:
            with mail_app.app_context():
                start.wait(timeout=10)
                sent_by[name] = 0
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    sent_by[name] += sender.deliver_due(limit=3)
                    if not pending():
                        return
                raise AssertionError(f"{name}: mail still pending after 30 s")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("one", "two")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []

    ids = Counter(message_id(message) for message in received(smtp_sink))
    assert len(ids) == 30
    assert ids.most_common(1)[0][1] == 1
    assert sum(sent_by.values()) == 30
    rows = outbox()
    assert {(row.status, row.attempts) for row in rows} == {(EmailStatus.SENT, 1)}
    for row in rows:
        assert sum(1 for msgid in ids if re.search(rf"\boutbox-{row.id}\b", msgid)) == 1


# --- 6. the background sender --------------------------------------------------------------------


class ObservedEvent(threading.Event):
    """The sender's wake-up event, telling the test when the sender has gone to sleep on it."""

    def __init__(self):
        super().__init__()
        self.sleeping = threading.Event()

    def wait(self, timeout=None):
        self.sleeping.set()
        return super().wait(timeout)


def test_a_commit_that_writes_mail_wakes_the_sender(mail_app, smtp_sink, owner, monkeypatch):
    mail_app.config["MAIL_POLL_SECONDS"] = 60
    wake = ObservedEvent()
    monkeypatch.setattr(sender, "wake", wake)
    thread = sender.SenderThread(mail_app)
    thread.start()
    try:
        # The first round finds nothing and goes to sleep for a whole poll interval.
        assert wake.sleeping.wait(timeout=10)
        assert smtp_sink.messages == []

        request = builders.submit(owner)

        assert wait_for(lambda: len(smtp_sink.messages) >= 2, timeout=10)
        subjects = sorted(m["Subject"] for m in received(smtp_sink))
        assert subjects == sorted(
            [subject("received", request.product), subject("awaiting_review", request.product)]
        )
    finally:
        thread.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(smtp_sink.messages) == 2
    assert {row.status for row in outbox()} == {EmailStatus.SENT}


# --- 7. the development mailbox ------------------------------------------------------------------


def test_the_development_mailbox_keeps_mail_instead_of_sending_it(client, app, owner):
    assert app.config["DEV_MAILBOX"]
    request = builders.submit(owner)

    assert sender.deliver_due() == 2

    rows = outbox()
    assert {(row.status, row.delivered_via) for row in rows} == {(EmailStatus.SENT, "mailbox")}
    assert all(row.sent_at is not None for row in rows)

    builders.login(client, owner)
    page = client.get("/dev/mailbox").get_data(as_text=True)
    received_row = row_for("received", request)
    assert "owner@example.com" in received_row.recipients
    assert str(escape(", ".join(received_row.recipients))) in page
    assert str(escape(received_row.subject)) in page
    # The reviewers' email is not the owner's to read: only super admins read every email.
    review_row = row_for("awaiting_review", request)
    assert REVIEWERS in review_row.recipients
    assert str(escape(review_row.subject)) not in page

    page = client.get(f"/dev/mailbox/{received_row.id}").get_data(as_text=True)
    # The text as it was written, its addresses made links.
    assert str(escape(received_row.body_text)) in re.sub(r"<a [^>]*>|</a>", "", page)
    assert f'<a href="{PUBLIC_URL}/requests/{request.id}"' in page
    assert "Olivia Owner asked for the new product" in page

    response = client.get(f"/dev/mailbox/{received_row.id}/html")
    # As it was written, told to open its links in a new tab (it is shown in a frame).
    assert response.get_data(as_text=True) == received_row.body_html.replace(
        "<body", '<base target="_blank"><body', 1
    )
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_the_development_mailbox_needs_a_login(client, app):
    response = client.get("/dev/mailbox")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_there_is_no_mailbox_when_mail_is_really_sent(client, mail_app, owner):
    builders.login(client, owner)
    assert client.get("/dev/mailbox").status_code == 404


def test_emails_and_pages_name_the_ministry_and_cluster_as_the_form_did(client, owner, admin):
    request = builders.submit(owner)
    request_services.decide(request.id, admin, approve=True)
    db.session.commit()
    received, approved = row_for("received", request), row_for("approved", request)
    for email in (received, approved):
        assert "Ministry:                  CITZ - Citizens' Services" in email.body_text
        assert "Cluster:                   Silver Hosting Tier" in email.body_text
        assert "CITZ - Citizens&#39; Services" in email.body_html
    assert "now being provisioned on\nSilver Hosting Tier;" in approved.body_text
    builders.login(client, admin)
    page = client.get(f"/admin/requests/{request.id}/whole").get_data(as_text=True)
    assert "<dt>Ministry</dt><dd>CITZ - Citizens&#39; Services</dd>" in page
    assert "<dt>Cluster</dt><dd>Silver Hosting Tier</dd>" in page


def test_reviewers_see_a_new_products_quotas_above_the_defaults(client, owner, admin):
    from tests.builders import DEFAULT_QUOTAS

    plain = builders.submit(owner)
    quotas = {env: dict(DEFAULT_QUOTAS) for env in ("tools", "dev", "test", "prod")}
    quotas["prod"]["cpu"] = "cpu-request-2-limit-4"
    bigger = builders.submit(owner, quotas=quotas)
    db.session.commit()
    assert "Quotas: the defaults." in row_for("awaiting_review", plain).body_text
    email = row_for("awaiting_review", bigger)
    assert "Quotas: above the defaults: prod CPU 2 cores, limit 4." in email.body_text
    assert "<strong>above the defaults:</strong> prod CPU 2 cores, limit 4" in email.body_html
    builders.login(client, admin)
    queue = client.get("/admin/queue").get_data(as_text=True)
    assert "<dt>Quotas</dt><dd>the defaults</dd>" in queue
    assert "<strong>above the defaults:</strong> prod CPU 2 cores, limit 4</dd>" in queue
