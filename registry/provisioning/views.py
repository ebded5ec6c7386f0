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
from ..access import Role, roles_required
from ..auth import service_accounts as accounts
from ..extensions import csrf, db
from ..htmx import redirect_to
from ..pagination import page_number
from . import bp, reports
from . import dead_letters as letters

# A reason is a sentence of ours, never the caller's input; cut to this anyway.
REASON_MAX = 300


def _problem(status: int, reason: str):
    return jsonify({"error": reason[:REASON_MAX]}), status


@bp.put("/api/v1/provision/namespace")
@csrf.exempt  # a machine caller with a bearer token, not a browser with a session cookie
def provisioned_callback():
    """For pipelines that call back over HTTP: the same as a ``provisioned`` status report."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    check = accounts.check_token(token.strip() if scheme.lower() == "bearer" else "")
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
        reports.provisioned_by_callback(plate, cluster)
    except reports.NotAwaiting as exc:
        db.session.rollback()
        return _problem(409, str(exc))
    except reports.Unprocessable as exc:
        db.session.rollback()
        return _problem(404, str(exc))
    db.session.commit()
    return "", 204


@bp.post("/admin/requests/<id:request_id>/resend")
@roles_required(Role.SUPER_ADMIN)
def resend(request_id: int):
    try:
        req = reports.resend(request_id, current_user)
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
    if state not in letters.LETTER_STATES:
        state = "open"
    page = letters.dead_letters(page_number(), current_app.config["PAGE_SIZE"], state)
    body = render_template(
        "provisioning/dead_letters.html",
        page=page,
        state=state,
        states=letters.LETTER_STATES,
        note_max=letters.NOTE_MAX,
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
        letter, _ = letters.replay_dead_letter(letter_id, current_user)
    except LookupError:
        abort(404)
    except letters.ReplayFailed as exc:
        db.session.commit()  # the new reason
        flash(f"{exc} It stays open with this reason.", "error")
    except letters.LetterError as exc:
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
        letter = letters.discard_dead_letter(letter_id, current_user, request.form.get("note"))
    except LookupError:
        abort(404)
    except letters.NoteRequired as exc:
        db.session.rollback()
        return _letters_page(422, error={"id": letter_id, "message": str(exc)})
    except letters.LetterError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back_to_letters()
    message = f"Dead letter #{letter.id} discarded."
    db.session.commit()
    flash(message, "success")
    return _back_to_letters()
