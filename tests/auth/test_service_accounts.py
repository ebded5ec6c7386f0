"""Service-account tokens: they expire, they can be revoked (on the page or the command line),
every use is noted even when the call fails, and super admins make them on a page that shows
the token once."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.auth import service_accounts as machine_accounts
from registry.auth.models import ServiceAccount
from registry.extensions import db
from registry.requests.models import RequestStatus
from registry.timeutil import utcnow
from tests import builders
from tests.provisioning.test_provisioning_api import TOKEN_PATTERN, approve, body_for, fresh, put

S = RequestStatus


def account(name: str) -> ServiceAccount:
    db.session.expire_all()
    return db.session.scalar(select(ServiceAccount).where(ServiceAccount.name == name))


@pytest.fixture
def pipeline(app):
    """An active account and its token."""
    _, token = machine_accounts.create_service_account("pipeline")
    db.session.commit()
    return token


# --- expiry --------------------------------------------------------------------------------------


def test_an_expired_token_is_refused_with_the_reason(client, owner, admin, pipeline):
    req = approve(owner, admin)
    account("pipeline").expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()

    response = put(client, body_for(req), pipeline)

    assert response.status_code == 401
    assert "expired" in response.get_json()["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert fresh(req.id).status == S.APPROVED
    assert account("pipeline").last_used_at is not None  # a use, though refused


def test_a_token_works_until_it_expires(client, owner, admin):
    _, token = machine_accounts.create_service_account("pipeline", expires_in_days=1)
    db.session.commit()
    expires_at = account("pipeline").expires_at
    assert timedelta(hours=23) < expires_at - utcnow() <= timedelta(days=1)
    req = approve(owner, admin)
    assert put(client, body_for(req), token).status_code == 204


def test_a_revoked_token_is_refused_with_the_reason(client, owner, admin, pipeline):
    req = approve(owner, admin)
    machine_accounts.revoke_service_account(account("pipeline"))
    db.session.commit()
    response = put(client, body_for(req), pipeline)
    assert response.status_code == 401
    assert "revoked" in response.get_json()["error"]


def test_an_unknown_token_says_only_that_a_valid_token_is_needed(client, pipeline):
    response = put(client, {"prefix": "abcdef", "clusterName": "silver"}, pipeline + "x")
    assert response.status_code == 401
    assert response.get_json()["error"] == "a valid provisioner bearer token is required"
    assert account("pipeline").last_used_at is None  # nobody used this token


@pytest.mark.parametrize(
    ("days", "expires"),
    [(None, timedelta(days=365)), ("30", timedelta(days=30)), ("0", None)],
)
def test_the_command_sets_the_expiry(runner, days, expires):
    args = ["service-accounts", "create", "pipeline"]
    if days is not None:
        args += ["--expires-in-days", days]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    expires_at = account("pipeline").expires_at
    if expires is None:
        assert expires_at is None
        assert "never expires" in result.output
    else:
        assert abs(expires_at - (utcnow() + expires)) < timedelta(minutes=1)
        assert f"expires on {expires_at:%Y-%m-%d}" in result.output


@pytest.mark.parametrize("days", ["-1", "3651", "9" * 30])
def test_the_command_refuses_an_expiry_out_of_range(runner, days):
    result = runner.invoke(args=["service-accounts", "create", "x", "--expires-in-days", days])
    assert result.exit_code == 2
    assert account("x") is None


# --- last used: every call that presents a known token --------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        pytest.param({"prefix": "abcdef"}, 400, id="bad-body"),
        pytest.param({"prefix": "abcdef", "clusterName": "silver"}, 404, id="unknown-plate"),
        pytest.param("pending", 409, id="not-awaiting"),
    ],
)
def test_last_used_is_kept_when_the_call_fails(client, owner, pipeline, body, status):
    if body == "pending":
        body = body_for(builders.submit(owner))  # pending: not waiting for the provisioner
    assert account("pipeline").last_used_at is None
    before = utcnow()

    response = put(client, body, pipeline)

    assert response.status_code == status
    used = account("pipeline").last_used_at
    assert used is not None
    assert used >= before - timedelta(seconds=1)


# --- the page ------------------------------------------------------------------------------------


def test_the_page_lists_the_accounts(client, admin, pipeline):
    old, _ = machine_accounts.create_service_account("old-pipeline", expires_in_days=0)
    machine_accounts.revoke_service_account(old)
    db.session.commit()
    builders.login(client, admin)

    page = client.get("/admin/service-accounts").get_data(as_text=True)

    rows = dict(
        re.findall(r'<tr id="service-account-\d+">\s*<td[^>]*>([^<]+)</td>(.*?)</tr>', page, re.S)
    )
    assert set(rows) == {"pipeline", "old-pipeline"}
    assert "never" in rows["old-pipeline"]  # never expires, never used
    assert "revoked" in rows["old-pipeline"]
    assert "Revoke" not in rows["old-pipeline"]
    assert "Revoke…" in rows["pipeline"]
    assert f"{account('pipeline').expires_at:%Y-%m-%d}" in rows["pipeline"]
    assert pipeline not in page  # a token is never shown again


def test_revoking_on_the_page_stops_the_token_at_once(client, owner, admin, pipeline):
    req = approve(owner, admin)
    account_id = account("pipeline").id
    builders.login(client, admin)

    response = builders.post(client, f"/admin/service-accounts/{account_id}/revoke")

    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/service-accounts"
    assert not account("pipeline").active
    assert put(client, body_for(req), pipeline).status_code == 401
    assert fresh(req.id).status == S.APPROVED
    [event] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "service_account_revoked")
    ).all()
    assert (event.actor, event.target) == (admin.email, "service account pipeline")
    # Again: it says so, and records nothing more.
    again = builders.post(client, f"/admin/service-accounts/{account_id}/revoke")
    assert again.status_code == 303
    assert "revoked already" in client.get("/admin/service-accounts").get_data(as_text=True)
    assert builders.post(client, "/admin/service-accounts/9999/revoke").status_code == 404


def test_creating_on_the_page_shows_the_token_once_and_it_works(client, owner, admin):
    builders.login(client, admin)

    response = builders.post(
        client, "/admin/service-accounts", {"name": "ci-pipeline", "expires_in_days": "7"}
    )

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_data(as_text=True)
    [token] = TOKEN_PATTERN.findall(body)
    assert "shown only this once" in body
    created = account("ci-pipeline")
    assert created.token_hash == machine_accounts.hash_token(token)
    assert abs(created.expires_at - (utcnow() + timedelta(days=7))) < timedelta(minutes=1)
    [event] = db.session.scalars(
        select(AuditEvent).where(AuditEvent.action == "service_account_created")
    ).all()
    assert (event.actor, event.target) == (admin.email, "service account ci-pipeline")
    # Not in the session cookie, not on the next page.
    with client.session_transaction() as session:
        assert token not in str(dict(session))
    assert token not in client.get("/admin/service-accounts").get_data(as_text=True)

    req = approve(owner, admin)
    assert put(client, body_for(req), token).status_code == 204


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"name": "", "expires_in_days": "7"}, "needs a name"),
        ({"name": "pipeline", "expires_in_days": "7"}, "exists already"),
        ({"name": "x", "expires_in_days": "soon"}, "whole number"),
        ({"name": "x", "expires_in_days": "-3"}, "a whole number from 0 to 3,650"),
        ({"name": "x", "expires_in_days": "3651"}, "a whole number from 0 to 3,650"),
        ({"name": "x", "expires_in_days": "9" * 30}, "a whole number from 0 to 3,650"),
    ],
)
def test_the_create_form_says_what_is_wrong(client, admin, pipeline, form, message):
    builders.login(client, admin)
    response = builders.post(client, "/admin/service-accounts", form)
    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body
    assert TOKEN_PATTERN.findall(body) == []
    db.session.expire_all()
    assert len(db.session.scalars(select(ServiceAccount)).all()) == 1
