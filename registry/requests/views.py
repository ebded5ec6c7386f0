from flask import abort, flash, url_for
from flask_login import current_user, login_required

from ..extensions import db
from ..health import queries as health
from ..htmx import redirect_to, render
from . import bp, queries, services


@bp.get("/requests/<int:request_id>")
@login_required
def detail(request_id: int):
    req = queries.get_visible(request_id, current_user)
    if req is None:
        abort(404)
    # Approved but not yet with the provisioner: say why, if its messages cannot reach NATS.
    unsent = health.unsent_messages(req.id) if req.status == "approved" else (0, None)
    # HTMX polls the live block (status and timeline) while the request is in flight.
    return render("requests/detail.html", block="live", req=req, product=req.product, unsent=unsent)


@bp.post("/requests/<int:request_id>/cancel")
@login_required
def cancel(request_id: int):
    if queries.get_visible(request_id, current_user) is None:
        abort(404)
    try:
        req = services.cancel(request_id, current_user)
    except services.NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except (services.AlreadyDecided, services.DecidedConcurrently) as exc:
        db.session.rollback()
        flash(str(exc), "error")
    else:
        message = f"Your request for {req.product.name} is cancelled."
        db.session.commit()
        flash(message, "success")
    return redirect_to(url_for("requests.detail", request_id=request_id))
