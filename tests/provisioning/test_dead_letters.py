"""Dead letters: a super admin replays one once its cause is fixed (applied through the bridge's
own steps; failing again, it stays open with the new reason) or discards it with a note; both
are resolved on the page, on the timeline of the request the report names, and in the audit
log. Support reads the page; only super admins act."""

import json

import pytest
from sqlalchemy import select

from registry import contract
from registry.audit.models import AuditEvent
from registry.extensions import db
from registry.provisioning import bridge
from registry.provisioning import dead_letters as dead_letter_rules
from registry.provisioning.models import DeadLetter
from registry.requests import services
from registry.requests.models import Request, RequestEvent, RequestStatus
from tests import builders


def _report(req, status="workflow_started", cluster="silver", **changes) -> bytes:
    body = contract.report_body(req.product.licence_plate, cluster, req.id, status, "started")
    return json.dumps({**body, **changes}).encode()


def _letters() -> list[DeadLetter]:
    letters = list(db.session.scalars(select(DeadLetter).order_by(DeadLetter.id)))
    db.session.rollback()
    return letters


def _audit(action) -> list[AuditEvent]:
    events = list(db.session.scalars(select(AuditEvent).where(AuditEvent.action == action)))
    db.session.rollback()
    return events


def _timeline(request_id) -> list[RequestEvent]:
    events = list(
        db.session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id)
        )
    )
    db.session.rollback()
    return events


@pytest.fixture
def early(app, owner):
    """A report that came before the registry had the approval on record (the provisioner
    ran a workflow a restore from backup had put back to pending): the bridge dead-letters it,
    naming the request."""
    req = builders.submit(owner)
    assert bridge.handle_report(app, _report(req), contract.STATUS_SUBJECT, 7, 1) == bridge.TERM
    [letter] = _letters()
    return req, letter


def test_a_dead_letter_names_the_request_its_workflow_names(app, owner, early):
    req, letter = early
    assert letter.request_id == req.id
    assert "no provisioning on the reported cluster" in letter.reason
    assert letter.resolution is None
    # A workflow naming no request of ours, or no workflow at all: no request.
    data = _report(req, workflow=f"silver-{req.product.licence_plate}-{req.id + 999}")
    bridge.handle_report(app, data)
    bridge.handle_report(app, b"{not json")
    assert [d.request_id for d in _letters()] == [req.id, None, None]


def test_replaying_a_dead_letter_applies_it_once_the_cause_is_fixed(
    client, owner, admin, other_admin, early
):
    req, letter = early
    builders.login(client, admin)

    # The cause is not fixed yet: it fails again, stays open, with the new reason.
    response = builders.post(client, f"/admin/dead-letters/{letter.id}/replay")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Dead letter #{letter.id} failed again" in page
    assert "It stays open with this reason." in page
    [again] = _letters()
    assert again.resolution is None
    assert "failed again: request" in again.reason and "(status pending)" in again.reason
    assert _audit("dead_letter_replayed") == []
    assert [e.kind for e in _timeline(req.id)] == ["transition"]

    # The approval is on record now: the report applies, as the bridge would have applied it.
    services.decide(req.id, other_admin, approve=True)
    db.session.commit()
    response = builders.post(client, f"/admin/dead-letters/{letter.id}/replay")
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert (
        f"Dead letter #{letter.id} replayed. Applied: request #{req.id} is now provisioning."
        in page
    )

    assert db.session.get(Request, req.id).status == RequestStatus.PROVISIONING.value
    db.session.rollback()
    timeline = _timeline(req.id)
    assert [(e.kind, e.to_label) for e in timeline[-2:]] == [
        ("transition", "Workflow started"),
        ("dead_letter", "Provisioner report replayed"),
    ]
    entry = timeline[-1]
    assert entry.actor_id == admin.id
    assert entry.from_status == entry.to_status == RequestStatus.PROVISIONING.value
    assert f"dead letter #{letter.id}" in entry.note

    [done] = _letters()
    assert (done.resolution, done.resolved_by_id) == ("replayed", admin.id)
    assert done.resolved_at is not None
    [event] = _audit("dead_letter_replayed")
    assert event.actor == admin.email
    assert event.target == f"dead letter #{letter.id} (request #{req.id})"

    # Resolved: off the open list, on the resolved one, and not replayed twice.
    assert f'id="letter-{letter.id}"' not in client.get("/admin/dead-letters").get_data(
        as_text=True
    )
    resolved = client.get("/admin/dead-letters?state=resolved").get_data(as_text=True)
    assert f'id="letter-{letter.id}"' in resolved and "replayed</span>" in resolved
    response = builders.post(client, f"/admin/dead-letters/{letter.id}/replay")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"Dead letter #{letter.id} was replayed already." in page
    assert len(_audit("dead_letter_replayed")) == 1
    assert [e.to_label for e in _timeline(req.id)].count("Workflow started") == 1


def test_a_replay_of_a_report_already_applied_changes_nothing_and_resolves_it(
    app, client, owner, admin, other_admin
):
    req = builders.submit(owner)
    services.decide(req.id, other_admin, approve=True)
    db.session.commit()
    data = _report(req)
    assert bridge.handle_report(app, data) == bridge.ACK
    # The same report, kept as a dead letter anyway (a database hiccup at the time, say).
    letter = dead_letter_rules.dead_letter("nats", data, "the database refused it: hiccup")
    db.session.commit()
    builders.login(client, admin)
    response = builders.post(client, f"/admin/dead-letters/{letter.id}/replay")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Nothing to change (step already passed)" in page
    assert [e.to_label for e in _timeline(req.id)].count("Workflow started") == 1
    assert _letters()[0].resolution == "replayed"


def test_discarding_needs_a_note_and_goes_on_the_timeline_and_in_the_audit_log(
    client, admin, early
):
    req, letter = early
    builders.login(client, admin)
    for note in ("", "   "):
        response = builders.post(client, f"/admin/dead-letters/{letter.id}/discard", {"note": note})
        assert response.status_code == 422
        assert "the note is required" in response.get_data(as_text=True)
    assert _letters()[0].resolution is None
    assert _audit("dead_letter_discarded") == []

    response = builders.post(
        client,
        f"/admin/dead-letters/{letter.id}/discard",
        {"note": "A test run of the pipeline against production; nothing was built."},
    )
    assert response.status_code == 303
    [done] = _letters()
    assert (done.resolution, done.resolved_by_id) == ("discarded", admin.id)
    assert done.resolution_note.startswith("A test run of the pipeline")
    entry = _timeline(req.id)[-1]
    assert (entry.kind, entry.to_label) == ("dead_letter", "Provisioner report discarded")
    assert entry.from_status == entry.to_status == RequestStatus.PENDING.value
    assert "A test run of the pipeline" in entry.note
    [event] = _audit("dead_letter_discarded")
    assert "A test run of the pipeline" in event.detail
    # The request did not move, and its page shows the entry.
    assert db.session.get(Request, req.id).status == RequestStatus.PENDING.value
    db.session.rollback()
    page = client.get(f"/requests/{req.id}").get_data(as_text=True)
    assert "Provisioner report discarded" in page


def test_a_letter_naming_no_request_is_discarded_without_a_timeline(app, client, admin):
    bridge.handle_report(app, b'{"prefix": "fedcba"}')
    [letter] = _letters()
    builders.login(client, admin)
    builders.post(client, f"/admin/dead-letters/{letter.id}/discard", {"note": "Garbage."})
    assert _letters()[0].resolution == "discarded"
    [event] = _audit("dead_letter_discarded")
    assert event.target == f"dead letter #{letter.id}"


def test_support_reads_the_page_and_its_resolutions_but_has_no_buttons(
    client, support, admin, early
):
    req, letter = early
    builders.login(client, support)
    page = client.get("/admin/dead-letters").get_data(as_text=True)
    assert f'id="letter-{letter.id}"' in page
    assert f'href="/requests/{req.id}"' in page
    assert "Replay</button>" not in page and "Discard" not in page
    assert builders.post(client, f"/admin/dead-letters/{letter.id}/replay").status_code == 403
    response = builders.post(client, f"/admin/dead-letters/{letter.id}/discard", {"note": "x"})
    assert response.status_code == 403
    assert _letters()[0].resolution is None
