from flask import abort, current_app, flash, jsonify, render_template, request, url_for
from flask_login import current_user

from .. import inputs
from ..auth.access import roles_required
from ..auth.models import Role
from ..extensions import csrf, db
from ..htmx import redirect_to
from . import bp, services


def _problem(status: int, reason: str):
    return jsonify({"error": reason}), status


@bp.put("/api/v1/provision/namespace")
@csrf.exempt  # a machine caller with a bearer token, not a browser with a session cookie
def provisioned_callback():
    """For pipelines that call back over HTTP: the same as a ``provisioned`` status report."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or services.service_account_for(token.strip()) is None:
        response = jsonify({"error": "a valid provisioner bearer token is required"})
        response.headers["WWW-Authenticate"] = 'Bearer realm="registry"'
        return response, 401
    try:
        body = inputs.json_body()
    except inputs.BadJSON as exc:
        return _problem(400, str(exc))
    if not isinstance(body, dict):
        return _problem(400, "the body must be a JSON object")
    plate, cluster = body.get("prefix"), body.get("clusterName")
    for key, value in (("prefix", plate), ("clusterName", cluster)):
        if not isinstance(value, str) or not value.strip():
            return _problem(400, f"missing field: {key}")
    try:
        services.provisioned_by_callback(plate.strip(), cluster.strip())
    except services.NotAwaiting as exc:
        db.session.rollback()
        return _problem(409, str(exc))
    except services.Unprocessable as exc:
        db.session.rollback()
        return _problem(404, str(exc))
    db.session.commit()
    return "", 204


@bp.post("/admin/requests/<int:request_id>/resend")
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


@bp.get("/admin/dead-letters")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def dead_letters():
    page = services.dead_letters(
        request.args.get("page", 1, type=int), current_app.config["PAGE_SIZE"]
    )
    return render_template("provisioning/dead_letters.html", page=page)
