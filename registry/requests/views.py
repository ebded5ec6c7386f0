from flask import abort, current_app, flash, render_template, request, url_for
from flask_login import current_user, login_required

from ..extensions import db
from ..htmx import is_htmx, redirect_to, render
from ..outbox import backlog
from . import bp, queries, services


def _detail(req, status: int = 200, **context):
    """The request page (HTMX polls its live block: status and timeline), with its comment form
    for those who may comment now."""
    # Approved but not yet with the provisioner: say why, if its messages cannot reach NATS.
    unsent = backlog.unsent_messages(req.id) if req.status == "approved" else (0, None)
    context.setdefault("may_comment", services.comment_blocker(req, current_user) is None)
    if req.is_pending and current_user.is_super_admin:
        # Where to decide it: the queue's page with it, or why this admin may not.
        context["decide_blocker"] = services.decision_blocker(req, current_user)
        if not context["decide_blocker"]:
            page = queries.queue_page_of(req, current_app.config["PAGE_SIZE"])
            context["queue_url"] = url_for(
                "review.queue", page=page if page > 1 else None, _anchor=f"queue-request-{req.id}"
            )
    return render(
        "requests/detail.html",
        block="live",
        status=status,
        req=req,
        product=req.product,
        unsent=unsent,
        comment_max=services.COMMENT_MAX,
        **context,
    )


@bp.get("/requests/<id:request_id>")
@login_required
def detail(request_id: int):
    req = queries.get_visible(request_id, current_user)
    if req is None:
        abort(404)
    # The live block's poll says which status the page shows: a move from it updates the rest.
    return _detail(req, shown=request.args.get("shown", "") if is_htmx() else "")


@bp.post("/requests/<id:request_id>/comments")
@login_required
def comment(request_id: int):
    """A comment from the team or a super admin on a pending or failed request: on the
    timeline, emailed to the other side. HTMX gets the form back (empty, or with the error and
    the text) and the new entry for the timeline; a browser without JavaScript, the page."""
    req = queries.get_visible(request_id, current_user)
    if req is None:
        abort(404)
    text = request.form.get("body", "")
    try:
        event = services.add_comment(req, current_user, text)
    except services.NotAllowed as exc:
        db.session.rollback()
        abort(403, str(exc))
    except (services.CommentInvalid, services.CommentClosed, services.TooManySubmissions) as exc:
        db.session.rollback()
        status = {services.CommentClosed: 409, services.TooManySubmissions: 429}.get(type(exc), 422)
        may_comment = not isinstance(exc, services.CommentClosed)
        context = {"comment_error": str(exc), "comment_text": text, "may_comment": may_comment}
        if is_htmx():
            page = render_template(
                "requests/_comment_form.html",
                req=req,
                comment_max=services.COMMENT_MAX,
                **context,
            )
            return page, status
        return _detail(req, status, **context)
    db.session.commit()
    if is_htmx():
        event = db.session.get(services.RequestEvent, event.id)
        form = render_template(
            "requests/_comment_form.html",
            req=req,
            may_comment=True,
            comment_max=services.COMMENT_MAX,
        )
        entry = render_template("requests/_event.html", e=event)
        return f'{form}\n<ol hx-swap-oob="beforeend:#timeline">{entry}</ol>'
    flash("Your comment is on the timeline.", "success")
    return redirect_to(url_for("requests.detail", request_id=request_id) + "#timeline")


@bp.post("/requests/<id:request_id>/cancel")
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
