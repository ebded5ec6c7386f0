"""The audit log: what is written (decisions, re-sends, mail retries, service accounts), in the
transaction of what it records; that it cannot be changed; the page and its CSV export."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from registry.audit import queries
from registry.audit import services as audit
from registry.audit.models import AuditEvent
from registry.audit.views import csv_cell
from registry.extensions import db
from registry.outbox.models import EmailStatus, OutboxEmail
from registry.requests import services
from registry.requests.models import RequestStatus
from tests import builders
from tests.builders import report
from tests.provisioning.test_provisioning_api import approve
from tests.requests.test_day_two import BIGGER_CPU, changed, live_product


def audit_events(action: str | None = None) -> list[AuditEvent]:
    query = select(AuditEvent).order_by(AuditEvent.id)
    if action:
        query = query.where(AuditEvent.action == action)
    db.session.expire_all()
    return list(db.session.scalars(query))


# --- what is written -----------------------------------------------------------------------------


def test_an_approval_and_a_rejection_are_recorded_with_the_request_and_the_comment(
    client, owner, admin
):
    approved, rejected = builders.submit(owner), builders.submit(owner)
    builders.login(client, admin)

    builders.post(client, f"/admin/requests/{approved.id}/decision", {"decision": "approve"})
    builders.post(
        client,
        f"/admin/requests/{rejected.id}/decision",
        {"decision": "reject", "comment": "=HYPERLINK(no)"},
    )

    first, second = audit_events("decision")
    assert (first.actor, first.actor_id, first.target) == (
        admin.email,
        admin.id,
        f"request #{approved.id}",
    )
    assert first.detail.startswith(f"Approved new product of {approved.product.name}")
    assert first.address == "127.0.0.1"
    assert second.target == f"request #{rejected.id}"
    assert second.detail.startswith("Rejected new product")
    assert "Comment: =HYPERLINK(no)" in second.detail


def test_an_approval_with_other_quotas_records_what_was_granted(client, owner, admin, other_admin):
    product = live_product(owner, other_admin)
    req = services.submit_edit(
        product,
        changed(product, quotas={"prod": {"cpu": BIGGER_CPU}}),
        owner,
        justification="Two more services go live in March.",
    )
    db.session.commit()
    builders.login(client, admin)

    response = builders.post(
        client,
        f"/admin/requests/{req.id}/decision",
        {
            "decision": "approve",
            "comment": "One step at a time.",
            "quota-prod-cpu": "cpu-request-1-limit-2",
        },
    )

    assert response.status_code == 303
    [event] = [e for e in audit_events("decision") if e.target == f"request #{req.id}"]
    assert "Comment: One step at a time." in event.detail
    assert f"Granted quotas: prod cpu cpu-request-1-limit-2 (asked {BIGGER_CPU})" in event.detail


def test_a_decision_that_is_rolled_back_leaves_no_event(owner, admin):
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    assert db.session.new  # the event waits in the decision's transaction ...
    db.session.rollback()
    assert audit_events("decision") == []  # ... and goes with it
    assert req.status == RequestStatus.PENDING


def test_a_resend_is_recorded(client, owner, admin):
    req = approve(owner, admin)
    report(req, "failed", "quota service down")
    builders.login(client, admin)

    response = builders.post(client, f"/admin/requests/{req.id}/resend")

    assert response.status_code == 303
    [event] = audit_events("resend")
    assert (event.actor, event.target) == (admin.email, f"request #{req.id}")
    assert "was failed; attempt 2." in event.detail


def test_a_resend_that_is_refused_is_not_recorded(client, owner, admin):
    req = builders.submit(owner)  # pending: nothing to re-send
    builders.login(client, admin)
    builders.post(client, f"/admin/requests/{req.id}/resend")
    assert audit_events("resend") == []


def test_a_mail_retry_is_recorded(client, owner, admin):
    req = builders.submit(owner)
    email = db.session.scalars(select(OutboxEmail).where(OutboxEmail.request_id == req.id)).first()
    email.status = EmailStatus.FAILED.value
    email.attempts = 8
    email.last_error = "550 mailbox unavailable"
    db.session.commit()
    builders.login(client, admin)

    assert builders.post(client, f"/admin/mail/{email.id}/retry").status_code == 303

    [event] = audit_events("mail_retry")
    assert (event.actor, event.target) == (admin.email, f"email #{email.id}")
    assert "550 mailbox unavailable" in event.detail
    # Retrying one that is not failed changes nothing and records nothing.
    builders.post(client, f"/admin/mail/{email.id}/retry")
    assert len(audit_events("mail_retry")) == 1


def test_service_accounts_made_and_revoked_on_the_command_line_are_recorded(runner):
    assert runner.invoke(args=["service-accounts", "create", "pipeline"]).exit_code == 0
    assert runner.invoke(args=["service-accounts", "revoke", "pipeline"]).exit_code == 0
    created, revoked = audit_events()
    assert (created.action, created.actor, created.target) == (
        "service_account_created",
        "cli",
        "service account pipeline",
    )
    assert created.detail.startswith("Expires ")
    assert (revoked.action, revoked.actor) == ("service_account_revoked", "cli")


def test_an_unknown_action_is_refused(app):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record("made_up")


# --- append-only ---------------------------------------------------------------------------------


@pytest.fixture
def one_event(app):
    event = audit.record("resend", target="request #1", actor_label="cli")
    db.session.commit()
    return event.id


def test_the_audit_log_refuses_an_update(one_event):
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(
            text("UPDATE audit_events SET actor = 'someone else' WHERE id = :id"), {"id": one_event}
        )
        db.session.flush()
    db.session.rollback()
    assert db.session.get(AuditEvent, one_event).actor == "cli"


def test_the_audit_log_refuses_a_delete_on_postgresql(one_event, is_postgres):
    if not is_postgres:
        pytest.skip("SQLite's trigger refuses UPDATE only; PostgreSQL's refuses DELETE too")
    with pytest.raises(DBAPIError, match="append-only"):
        db.session.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": one_event})
    db.session.rollback()
    assert db.session.get(AuditEvent, one_event) is not None


# --- the page ------------------------------------------------------------------------------------


@pytest.fixture
def logged(app, admin, support):
    """Six events by three actors over three days, oldest first. (Signing in may log events
    of its own, today: the tests that count rows look at March 2025 only.)"""
    day = datetime(2025, 3, 10, 12, 0, tzinfo=UTC).replace(tzinfo=None)  # stored naive UTC
    rows = [
        ("decision", admin.email, day),
        ("resend", admin.email, day + timedelta(days=1)),
        ("mail_retry", "support@example.com", day + timedelta(days=1, hours=11)),
        ("service_account_created", "cli", day + timedelta(days=2)),
        ("decision", "admin2@example.com", day + timedelta(days=2, hours=1)),
        ("sign_in_failed", "=cmd|' /C calc'!A0", day + timedelta(days=2, hours=2)),
    ]
    for i, (action, actor, at) in enumerate(rows):
        db.session.add(AuditEvent(action=action, actor=actor, at=at, target=f"t{i}", detail=""))
    db.session.commit()
    return rows


MARCH_12 = "2025-03-12"


def listed(client, **query) -> list[str]:
    """The targets the page lists, in order."""
    response = client.get("/audit", query_string=query)
    assert response.status_code == 200
    return re.findall(r"<td[^>]*>(t\d)</td>", response.get_data(as_text=True))


def test_the_page_lists_events_newest_first_and_filters_them(client, support, logged):
    builders.login(client, support)
    assert listed(client) == ["t5", "t4", "t3", "t2", "t1", "t0"]
    assert listed(client, action="decision") == ["t4", "t0"]
    assert listed(client, actor="ADMIN") == ["t4", "t1", "t0"]  # part of an email, any case
    assert listed(client, actor="%") == []  # a wildcard is a character like any other
    assert listed(client, **{"from": "2025-03-11", "to": "2025-03-11"}) == ["t2", "t1"]
    assert listed(client, **{"from": "2025-03-12"}) == ["t5", "t4", "t3"]
    assert listed(client, action="decision", actor="admin2", to="2025-03-12") == ["t4"]
    # Nonsense filters are ignored, not an error.
    assert listed(client, action="drop_table", **{"from": "yesterday"}) == listed(client)


def test_the_page_offers_every_action_and_the_export_with_the_filters(client, admin, logged):
    builders.login(client, admin)
    page = client.get("/audit", query_string={"action": "resend", "actor": "x"}).get_data(
        as_text=True
    )
    for action, label in audit.ACTIONS.items():
        assert f'<option value="{action}"' in page
        assert label in page
    assert 'href="/audit.csv?action=resend&amp;actor=x"' in page
    assert 'href="/audit"' in client.get("/admin/queue").get_data(as_text=True)  # in the nav


def test_the_page_is_paginated(app, client, support, logged):
    app.config["PAGE_SIZE"] = 4
    builders.login(client, support)
    assert listed(client, to=MARCH_12) == ["t5", "t4", "t3", "t2"]
    assert listed(client, to=MARCH_12, page=2) == ["t1", "t0"]
    page = client.get("/audit", query_string={"action": "decision"}).get_data(as_text=True)
    assert "Older" not in page


# --- the CSV export -------------------------------------------------------------------------------


def exported(client, **query) -> list[list[str]]:
    response = client.get("/audit.csv", query_string=query)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_the_export_has_a_header_and_the_same_filters(client, support, logged):
    builders.login(client, support)
    header, *rows = exported(client, to=MARCH_12)
    assert header == ["id", "at", "actor", "action", "target", "detail", "address"]
    assert [r[4] for r in rows] == ["t5", "t4", "t3", "t2", "t1", "t0"]
    assert rows[-1][1] == "2025-03-10T12:00:00Z"
    _, *decisions = exported(client, action="decision", **{"from": "2025-03-12"})
    assert [r[4] for r in decisions] == ["t4"]


def test_the_export_defuses_formulas(client, support, logged):
    builders.login(client, support)
    _, *rows = exported(client, action="sign_in_failed")
    assert rows[0][2] == "'=cmd|' /C calc'!A0"
    assert [csv_cell(v) for v in ("+1", "-1", "@SUM(A1)", "\tx", "plain", "a=b", None)] == [
        "'+1",
        "'-1",
        "'@SUM(A1)",
        "'\tx",
        "plain",
        "a=b",
        "",
    ]


def test_the_export_reads_the_log_in_chunks(client, support, logged, monkeypatch, count_queries):
    monkeypatch.setattr(queries, "EXPORT_CHUNK", 4)
    builders.login(client, support)
    with count_queries() as counter:
        _, *rows = exported(client, to=MARCH_12)
    assert [r[4] for r in rows] == ["t5", "t4", "t3", "t2", "t1", "t0"]
    reads = [s for s in counter.statements if "FROM audit_events" in s]
    assert len(reads) == 2  # six rows, four at a time
    assert all("LIMIT" in s for s in reads)


def test_the_export_of_nothing_is_its_header(client, support):
    builders.login(client, support)
    header = ["id", "at", "actor", "action", "target", "detail", "address"]
    assert exported(client, action="resend") == [header]
