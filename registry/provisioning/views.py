from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    make_response,
    render_template,
    request,
    url_for,
)
from flask_login import current_user

from .. import contract, inputs
from ..auth.access import roles_required
from ..auth.models import Role
from ..extensions import csrf, db
from ..htmx import redirect_to
from ..pagination import page_number
from ..timeutil import utcnow
from . import bp, services
from .models import ServiceAccount

SERVICE_ACCOUNTS = "provisioning/service_accounts.html"


# A reason is a sentence of ours, never the caller's input; cut to this anyway.
REASON_MAX = 300


def _problem(status: int, reason: str):
    return jsonify({"error": reason[:REASON_MAX]}), status


@bp.put("/api/v1/provision/namespace")
@csrf.exempt  # a machine caller with a bearer token, not a browser with a session cookie
def provisioned_callback():
    """For pipelines that call back over HTTP: the same as a ``provisioned`` status report."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    check = services.check_token(token.strip() if scheme.lower() == "bearer" else "")
    if check.account is not None:
        # The use of a token we issued is kept on its own, before the work: a call that then
        # fails (400, 404, 409, or 401 for a revoked or expired token) still counts as a use.
        db.session.commit()
    if not check.ok:
        response = jsonify({"error": check.reason})
        response.headers["WWW-Authenticate"] = 'Bearer realm="registry"'
        return response, 401
    try:
        plate, cluster = contract.parse_callback(inputs.json_body())
    except (inputs.BadJSON, contract.InvalidReport) as exc:
        return _problem(400, str(exc))
    try:
        services.provisioned_by_callback(plate, cluster)
    except services.NotAwaiting as exc:
        db.session.rollback()
        return _problem(409, str(exc))
    except services.Unprocessable as exc:
        db.session.rollback()
        return _problem(404, str(exc))
    db.session.commit()
    return "", 204


@bp.post("/admin/requests/<id:request_id>/resend")
@roles_required(Role.SUPER_ADMIN)
def resend(request_id: int):
    try:
        req = services.resend(request_id, current_user)
    except LookupError:
        abort(404)
    except ValueError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        message = f"Request #{req.id} is sent to the provisioner again (attempt {req.attempt})."
        db.session.commit()
        flash(message, "success")
    return redirect_to(url_for("requests.detail", request_id=request_id))


def _letters_page(status: int = 200, **context):
    state = request.args.get("state", "open")
    if state not in services.LETTER_STATES:
        state = "open"
    page = services.dead_letters(page_number(), current_app.config["PAGE_SIZE"], state)
    body = render_template(
        "provisioning/dead_letters.html",
        page=page,
        state=state,
        states=services.LETTER_STATES,
        note_max=services.NOTE_MAX,
        **context,
    )
    return make_response(body, status)


@bp.get("/admin/dead-letters")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def dead_letters():
    """Reports that could not be applied: open ones to replay or discard, resolved ones."""
    return _letters_page()


def _back_to_letters():
    return redirect_to(url_for("provisioning.dead_letters", state=request.args.get("state")))


@bp.post("/admin/dead-letters/<id:letter_id>/replay")
@roles_required(Role.SUPER_ADMIN)
def replay_dead_letter(letter_id: int):
    """Apply a dead letter's report again, once its cause is fixed."""
    try:
        letter, _ = services.replay_dead_letter(letter_id, current_user)
    except LookupError:
        abort(404)
    except services.ReplayFailed as exc:
        db.session.commit()  # the new reason
        flash(f"{exc} It stays open with this reason.", "error")
    except services.LetterError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        message = f"Dead letter #{letter.id} replayed. {letter.resolution_note}"
        db.session.commit()
        flash(message, "success")
    return _back_to_letters()


@bp.post("/admin/dead-letters/<id:letter_id>/discard")
@roles_required(Role.SUPER_ADMIN)
def discard_dead_letter(letter_id: int):
    """Set a dead letter aside for good, with the reason why (required)."""
    try:
        letter = services.discard_dead_letter(letter_id, current_user, request.form.get("note"))
    except LookupError:
        abort(404)
    except services.NoteRequired as exc:
        db.session.rollback()
        return _letters_page(422, error={"id": letter_id, "message": str(exc)})
    except services.LetterError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back_to_letters()
    message = f"Dead letter #{letter.id} discarded."
    db.session.commit()
    flash(message, "success")
    return _back_to_letters()


def _service_accounts_page(status: int = 200, **context):
    context.setdefault("form", {"name": "", "expires_in_days": str(services.DEFAULT_TOKEN_DAYS)})
    page = render_template(
        SERVICE_ACCOUNTS, accounts=services.service_accounts(), now=utcnow(), **context
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
            default=services.DEFAULT_TOKEN_DAYS,
            low=0,
            high=services.MAX_TOKEN_DAYS,
        )
    except inputs.NotAWholeNumber as exc:
        return _service_accounts_page(422, form=form, error=str(exc))
    try:
        account, token = services.create_service_account(form["name"], days, actor=current_user)
    except services.ServiceAccountError as exc:
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
        services.revoke_service_account(account, actor=current_user)
    except services.ServiceAccountError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        name = account.name
        db.session.commit()
        flash(f"Service account {name} is revoked: its token no longer works.", "success")
    return redirect_to(url_for("provisioning.service_accounts"))
