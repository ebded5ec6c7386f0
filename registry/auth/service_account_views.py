"""The super admins' page of service accounts: make one (its token shown once), revoke one."""

from flask import (
    flash,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from .. import inputs
from ..access import roles_required
from ..extensions import db
from ..htmx import redirect_to
from ..timeutil import utcnow
from . import bp
from . import service_accounts as accounts
from .models import Role, ServiceAccount

SERVICE_ACCOUNTS = "auth/service_accounts.html"


def _service_accounts_page(status: int = 200, **context):
    context.setdefault("form", {"name": "", "expires_in_days": str(accounts.DEFAULT_TOKEN_DAYS)})
    page = render_template(
        SERVICE_ACCOUNTS, accounts=accounts.service_accounts(), now=utcnow(), **context
    )
    return make_response(page, status)


@bp.get("/admin/service-accounts")
@roles_required(Role.SUPER_ADMIN)
def service_accounts():
    return _service_accounts_page()


@bp.post("/admin/service-accounts")
@roles_required(Role.SUPER_ADMIN)
def create_service_account():
    """Make a service account; the page shows its token this once (never stored, never in a
    flash message: the session cookie is signed, not encrypted)."""
    form = {
        "name": request.form.get("name", "").strip(),
        "expires_in_days": request.form.get("expires_in_days", "").strip(),
    }
    try:
        days = inputs.whole_number(
            form["expires_in_days"],
            "The number of days (0: never expires)",
            default=accounts.DEFAULT_TOKEN_DAYS,
            low=0,
            high=accounts.MAX_TOKEN_DAYS,
        )
    except inputs.NotAWholeNumber as exc:
        return _service_accounts_page(422, form=form, error=str(exc))
    try:
        account, token = accounts.create_service_account(form["name"], days, actor=current_user)
    except accounts.ServiceAccountError as exc:
        db.session.rollback()
        return _service_accounts_page(422, form=form, error=str(exc))
    name = account.name
    db.session.commit()
    response = _service_accounts_page(created={"name": name, "token": token})
    response.headers["Cache-Control"] = "no-store"  # the token is on this page
    return response


@bp.post("/admin/service-accounts/<id:account_id>/revoke")
@roles_required(Role.SUPER_ADMIN)
def revoke_service_account(account_id: int):
    account = db.get_or_404(ServiceAccount, account_id)
    try:
        accounts.revoke_service_account(account, actor=current_user)
    except accounts.ServiceAccountError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        name = account.name
        db.session.commit()
        flash(f"Service account {name} is revoked: its token no longer works.", "success")
    return redirect_to(url_for("auth.service_accounts"))
