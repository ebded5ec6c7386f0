"""The request lifecycle: the transition table, its events, and what the database refuses."""

import itertools

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import IntegrityError

from registry.auth.models import Role
from registry.extensions import db
from registry.products.models import ProductStatus
from registry.requests import services
from registry.requests.lifecycle import TRANSITIONS, IllegalTransition, transition
from registry.requests.models import Request, RequestEvent, RequestStatus, RequestType
from registry.timeutil import utcnow
from tests import builders
from tests.builders import report

S = RequestStatus


def _events(request_id):
    return list(
        db.session.scalars(
            select(RequestEvent)
            .where(RequestEvent.request_id == request_id)
            .order_by(RequestEvent.id)
        )
    )


def _request_in(status, requester, admin):
    """A committed create request for a gold product (two clusters), brought to ``status``
    through the services, as people and the provisioner would."""
    req = builders.submit(requester, cluster_name="gold")
    if status == S.REJECTED:
        services.decide(req.id, admin, approve=False, comment="Use the existing product.")
    elif status == S.CANCELLED:
        services.cancel(req.id, requester)
    elif status is not None and status != S.PENDING:
        services.decide(req.id, admin, approve=True)
        if status == S.PROVISIONING:
            report(req, "workflow_started", cluster="gold")
        elif status == S.PARTIALLY_PROVISIONED:
            report(req, "provisioned", cluster="gold")
        elif status == S.PROVISIONED:
            report(req, "provisioned", cluster="gold")
            report(req, "provisioned", cluster="golddr")
        elif status == S.FAILED:
            report(req, "failed", "quota service down", cluster="golddr")
    db.session.commit()
    req = db.session.get(Request, req.id)
    assert req.status == (status or S.PENDING)
    return req


def test_submitting_creates_a_pending_request_and_its_first_event(owner):
    req = builders.submit(owner)
    assert req.status == S.PENDING
    assert req.type == RequestType.CREATE
    assert req.product.status == ProductStatus.REQUESTED
    [event] = _events(req.id)
    assert (event.from_status, event.to_status, event.actor_id) == (None, "pending", owner.id)


# What a create request's status makes of its product, in the words the product page uses.
PRODUCT_AFTER = {
    S.PENDING: ProductStatus.REQUESTED,
    S.APPROVED: ProductStatus.BEING_CREATED,
    S.PROVISIONING: ProductStatus.BEING_CREATED,
    S.PARTIALLY_PROVISIONED: ProductStatus.BEING_CREATED,
    S.FAILED: ProductStatus.FAILED,
    S.REJECTED: ProductStatus.NOT_CREATED,
    S.CANCELLED: ProductStatus.NOT_CREATED,
    S.PROVISIONED: ProductStatus.ACTIVE,
}


@pytest.mark.parametrize(("start", "to"), [m for m in TRANSITIONS if m[0] is not None])
def test_every_allowed_move_works_and_writes_its_event(start, to, owner, admin):
    req = _request_in(start, owner, admin)
    assert req.product.status == PRODUCT_AFTER[start]
    if to == S.REJECTED:
        req.decided_by_id, req.decided_at = admin.id, utcnow()
        req.decision_comment = "reason"
    if to == S.APPROVED and start == S.PENDING:
        req.decided_by_id, req.decided_at = admin.id, utcnow()
    actor = owner if to == S.CANCELLED else admin
    transition(req, to, actor, note="moved by the test")
    db.session.commit()

    assert req.status == to
    assert req.product.status == PRODUCT_AFTER[to]
    last = _events(req.id)[-1]
    assert (last.from_status, last.to_status, last.actor_id, last.note) == (
        start.value,
        to.value,
        actor.id,
        "moved by the test",
    )


def test_the_table_is_the_lifecycle_the_domain_describes():
    in_flight = {S.APPROVED, S.PROVISIONING, S.PARTIALLY_PROVISIONED}
    assert set(TRANSITIONS) == {
        (None, S.PENDING),
        (None, S.APPROVED),
        (S.PENDING, S.APPROVED),
        (S.PENDING, S.REJECTED),
        (S.PENDING, S.CANCELLED),
        (S.APPROVED, S.PROVISIONING),
        (S.PROVISIONING, S.PROVISIONING),
        (S.APPROVED, S.PARTIALLY_PROVISIONED),
        (S.PROVISIONING, S.PARTIALLY_PROVISIONED),
        (S.PARTIALLY_PROVISIONED, S.PARTIALLY_PROVISIONED),
        *((s, S.PROVISIONED) for s in in_flight),
        *((s, S.FAILED) for s in in_flight),
        *((s, S.APPROVED) for s in (*in_flight, S.FAILED)),
    }
    # Nothing leaves a final state.
    assert not [m for m in TRANSITIONS if m[0] in (S.PROVISIONED, S.REJECTED, S.CANCELLED)]


REFUSED = [
    (start, to)
    for start, to in itertools.product([None, *S], S)
    if (start, to) not in TRANSITIONS and start is not None
]


@pytest.mark.parametrize(("start", "to"), REFUSED)
def test_every_other_move_is_refused_and_changes_nothing(start, to, owner, admin):
    req = _request_in(start, owner, admin)
    before = len(_events(req.id))
    with pytest.raises(IllegalTransition):
        transition(req, to, admin, note="should not happen")
    db.session.rollback()
    req = db.session.get(Request, req.id)
    assert req.status == start
    assert len(_events(req.id)) == before


def test_a_new_request_cannot_start_anywhere_but_pending(owner):
    req = builders.submit(owner)
    fresh = Request(product=req.product, type="create", requested_by_id=owner.id, requested_data={})
    for to in (S.APPROVED, S.REJECTED, S.CANCELLED):
        with pytest.raises(IllegalTransition):
            transition(fresh, to, owner)


class TestDatabaseRefusesIllegalStates:
    """Even code that skips the lifecycle cannot store an impossible request."""

    def _write(self, req_id, **values):
        with pytest.raises(IntegrityError):
            db.session.execute(update(Request).where(Request.id == req_id).values(**values))
            db.session.flush()
        db.session.rollback()

    def test_approved_without_a_decider(self, owner):
        req = builders.submit(owner)
        self._write(req.id, status="approved")

    def test_rejected_without_a_comment(self, owner, admin):
        req = builders.submit(owner)
        self._write(req.id, status="rejected", decided_by_id=admin.id, decided_at=utcnow())
        self._write(
            req.id,
            status="rejected",
            decided_by_id=admin.id,
            decided_at=utcnow(),
            decision_comment="   ",
        )

    def test_decided_by_its_own_requester(self, owner):
        req = builders.submit(owner)
        self._write(req.id, status="approved", decided_by_id=owner.id, decided_at=utcnow())

    def test_unknown_status(self, owner):
        req = builders.submit(owner)
        self._write(req.id, status="lost")

    def test_decision_on_a_pending_request(self, owner, admin):
        req = builders.submit(owner)
        self._write(req.id, decided_by_id=admin.id, decided_at=utcnow())

    def test_second_active_request_for_one_product(self, owner):
        req = builders.submit(owner)
        with pytest.raises(IntegrityError):
            db.session.execute(
                text(
                    "INSERT INTO requests (product_id, type, status, requested_by_id, created_at,"
                    " updated_at, requested_data, version)"
                    " VALUES (:p, 'edit', 'pending', :u, :now, :now, '{}', 1)"
                ),
                {"p": req.product_id, "u": owner.id, "now": utcnow()},
            )
        db.session.rollback()

    def test_a_finished_request_does_not_block_a_new_one(self, owner, admin):
        req = _request_in(S.REJECTED, owner, admin)
        db.session.execute(
            text(
                "INSERT INTO requests (product_id, type, status, requested_by_id, created_at,"
                " updated_at, requested_data, version)"
                " VALUES (:p, 'create', 'pending', :u, :now, :now, '{}', 1)"
            ),
            {"p": req.product_id, "u": owner.id, "now": utcnow()},
        )
        db.session.commit()
        count = db.session.scalar(
            select(func.count()).select_from(Request).where(Request.product_id == req.product_id)
        )
        assert count == 2


class TestDecisions:
    def test_approve_records_the_decision(self, owner, admin):
        req = builders.submit(owner)
        services.decide(req.id, admin, approve=True, comment="  ")
        db.session.commit()
        req = db.session.get(Request, req.id)
        assert (req.status, req.decided_by_id, req.decision_comment) == ("approved", admin.id, None)
        assert req.decision_data == req.requested_data
        assert req.decided_at is not None

    def test_reject_needs_a_comment(self, owner, admin):
        req = builders.submit(owner)
        with pytest.raises(services.CommentRequired):
            services.decide(req.id, admin, approve=False, comment=" ")
        db.session.rollback()
        assert db.session.get(Request, req.id).status == "pending"

    def test_an_admin_cannot_decide_their_own_request(self, admin):
        req = builders.submit(admin)
        with pytest.raises(services.NotAllowed, match="another super admin"):
            services.decide(req.id, admin, approve=True)

    @pytest.mark.parametrize("role", [Role.USER, Role.SUPPORT])
    def test_only_super_admins_decide(self, role, owner):
        req = builders.submit(owner)
        someone = builders.make_user(role)
        with pytest.raises(services.NotAllowed):
            services.decide(req.id, someone, approve=True)

    def test_a_second_decision_is_answered_with_the_first(self, owner, admin, other_admin):
        req = builders.submit(owner)
        services.decide(req.id, admin, approve=True)
        db.session.commit()
        with pytest.raises(
            services.AlreadyDecided, match="Ada Admin approved this request just now"
        ):
            services.decide(req.id, other_admin, approve=False, comment="No.")

    def test_a_cancelled_request_cannot_be_decided(self, owner, admin):
        req = builders.submit(owner)
        services.cancel(req.id, owner)
        db.session.commit()
        with pytest.raises(services.AlreadyDecided, match="cancelled"):
            services.decide(req.id, admin, approve=True)

    def test_only_the_requester_cancels(self, owner, admin):
        req = builders.submit(owner)
        with pytest.raises(services.NotAllowed):
            services.cancel(req.id, admin)

    def test_a_decided_request_cannot_be_cancelled(self, owner, admin):
        req = builders.submit(owner)
        services.decide(req.id, admin, approve=True)
        db.session.commit()
        with pytest.raises(services.AlreadyDecided):
            services.cancel(req.id, owner)
