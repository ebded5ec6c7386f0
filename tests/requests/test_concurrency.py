"""Two admins clicking at the same instant: exactly one decision is stored, the other is told."""

import threading

import pytest
from sqlalchemy import func, select

from registry.extensions import db
from registry.requests import services
from registry.requests.models import Request, RequestEvent
from tests import builders


def _race(app, request_id, deciders):
    """Run each decider in its own thread, connection and transaction, released together."""
    barrier = threading.Barrier(len(deciders))
    outcomes: list = [None] * len(deciders)

    def decide(i, user_id, approve):
        with app.app_context():
            actor = db.session.get(type(deciders[i][0]), user_id)
            barrier.wait()
            try:
                services.decide(request_id, actor, approve, comment=None if approve else "No.")
                db.session.commit()
                outcomes[i] = "stored"
            except services.RequestError as exc:
                db.session.rollback()
                outcomes[i] = exc
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=decide, args=(i, user.id, approve))
        for i, (user, approve) in enumerate(deciders)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return outcomes


@pytest.mark.parametrize("attempt", range(5))
def test_two_concurrent_decisions_store_exactly_one(app, owner, admin, other_admin, attempt):
    req = builders.submit(owner)
    outcomes = _race(app, req.id, [(admin, True), (other_admin, False)])

    assert outcomes.count("stored") == 1, outcomes
    [loser] = [o for o in outcomes if o != "stored"]
    assert isinstance(loser, services.AlreadyDecided | services.DecidedConcurrently)
    assert str(loser)  # a sentence the admin is shown

    db.session.expire_all()
    stored = db.session.get(Request, req.id)
    winner = admin if outcomes[0] == "stored" else other_admin
    assert stored.status == ("approved" if winner is admin else "rejected")
    assert stored.decided_by_id == winner.id
    decisions = db.session.scalar(
        select(func.count())
        .select_from(RequestEvent)
        .where(RequestEvent.request_id == req.id, RequestEvent.from_status == "pending")
    )
    assert decisions == 1


def test_the_losing_admin_is_shown_the_decision_in_the_queue(
    app, client, owner, admin, other_admin
):
    req = builders.submit(owner)
    services.decide(req.id, admin, approve=True)
    db.session.commit()

    builders.login(client, other_admin)
    response = builders.post(
        client,
        f"/admin/requests/{req.id}/decision",
        {"decision": "reject", "comment": "Too late"},
        htmx=True,
    )
    body = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Ada Admin approved this request just now." in body
    assert "0 pending" in body
    db.session.expire_all()
    assert db.session.get(Request, req.id).status == "approved"
