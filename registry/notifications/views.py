from functools import wraps

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from ..access import Role, roles_required
from ..extensions import db
from ..outbox.models import EmailStatus, OutboxEmail
from ..pagination import page_number
from . import bp, services


@bp.get("/admin/mail")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def outgoing():
    status = request.args.get("status", "")
    if status and status not in EmailStatus.__members__.values():
        status = ""
    page = services.outgoing(
        status or None,
        page_number(),
        current_app.config["PAGE_SIZE"],
    )
    return render_template(
        "notifications/outgoing.html",
        page=page,
        status=status,
        statuses=list(EmailStatus),
    )


@bp.post("/admin/mail/<id:email_id>/retry")
@roles_required(Role.SUPER_ADMIN)
def retry(email_id: int):
    try:
        email = services.retry(email_id)
    except LookupError:
        abort(404)
    except ValueError as exc:
        flash(str(exc), "error")
    else:
        db.session.commit()
        flash(f"Email {email.id} is queued to be sent again.", "success")
    return redirect(url_for("notifications.outgoing", status=request.args.get("status", "")), 303)


def dev_mailbox_only(view):
    """With DEV_MAILBOX off the mailbox pages do not exist, for anyone: 404 before the sign-in."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        if not current_app.config["DEV_MAILBOX"]:
            abort(404)
        return view(*args, **kwargs)

    return wrapped


@bp.get("/dev/mailbox")
@dev_mailbox_only
@login_required
def mailbox():
    """Development only: the email the registry wrote, readable without a mail server. Super
    admins read every email; everyone else the email addressed to them."""
    page = services.outgoing(
        None,
        page_number(),
        50,
        addressed_to=None if current_user.is_super_admin else current_user.email,
    )
    return render_template("notifications/mailbox.html", page=page)


def _readable_email(email_id: int) -> OutboxEmail:
    """The email, if the signed-in user may read it; else 404, as if it did not exist."""
    email = db.session.get(OutboxEmail, email_id)
    if email is None or not (
        current_user.is_super_admin or services.is_addressed_to(email, current_user.email)
    ):
        abort(404)
    return email


@bp.get("/dev/mailbox/<id:email_id>")
@dev_mailbox_only
@login_required
def mailbox_message(email_id: int):
    return render_template("notifications/message.html", email=_readable_email(email_id))


NEW_TAB = '<base target="_blank">'


@bp.get("/dev/mailbox/<id:email_id>/html")
@dev_mailbox_only
@login_required
def mailbox_html(email_id: int):
    email = _readable_email(email_id)
    # Shown in a sandboxed iframe; the body was rendered with autoescaping, but keep scripts out.
    # Its links open in a new tab (the registry refuses to be framed, so in the frame they
    # would show a broken page); the frame's sandbox lets them, and nothing else.
    html = email.body_html
    body = html.find("<body")
    html = html[:body] + NEW_TAB + html[body:] if body >= 0 else NEW_TAB + html
    response = current_app.response_class(html, mimetype="text/html")
    # Email HTML carries inline styles (mail clients need them); nothing here can run a script,
    # and only the mailbox page of this site may frame it.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
    )
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response
