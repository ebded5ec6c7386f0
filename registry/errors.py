"""Error pages in the registry's own words: what happened, what to do, a way home.

A 500 never shows what went wrong inside (the log has it): only that it was our fault and what
to try. Other errors keep a reason a view gave on purpose (``abort(403, "...")``, a CSRF
refusal), but not werkzeug's generic sentences, which are replaced by ours.
"""

from urllib.parse import urlsplit

from flask import current_app, jsonify, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

from .htmx import is_htmx

# code -> (heading, what to do)
WORDS = {
    400: (
        "The registry could not use what was sent",
        "Go back, check what you entered and try again.",
    ),
    403: (
        "You do not have access to this page",
        "If you need it for your work, ask a super admin of the registry for the role that "
        "opens it.",
    ),
    404: (
        "There is nothing here",
        "The address may be mistyped, or what it pointed to is not shared with you. Check the "
        "address, or start again from your home page.",
    ),
    405: (
        "That cannot be done from this address",
        "Use the buttons and links on the registry's pages rather than typing the address.",
    ),
    409: (
        "That cannot be done right now",
        "Something else is under way: open the page again to see where it stands.",
    ),
    413: (
        "What was sent is too large",
        "Send less at a time, then try again.",
    ),
    429: (
        "Too many attempts",
        "Wait a minute, then try again.",
    ),
    500: (
        "Something went wrong on our side",
        "Nothing you did caused this, and the registry's team can see it in the logs. Try again "
        "in a minute; if it keeps happening, contact support and say what you were doing.",
    ),
}
GENERIC = (
    "Something stopped this page",
    "Try again, or start again from your home page.",
)

# The fallback when even the error page cannot be drawn (the database is down, say).
BARE_500 = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Something went wrong · Product Registry</title></head><body><main>
<h1>Something went wrong on our side</h1><p>Try again in a minute.</p>
<p><a href="/">Back to the registry</a></p></main></body></html>"""


def explain(exc: HTTPException) -> dict:
    """The words an error page shows: a heading, the reason (if a view gave one), what to do."""
    code = exc.code or 500
    heading, advice = WORDS.get(code, GENERIC)
    reason = None
    if code < 500 and exc.description and exc.description != type(exc).description:
        reason = exc.description
    return {"code": code, "heading": heading, "reason": reason, "advice": advice}


def register(app) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code and exc.code >= 500:
            return server_error(exc)
        if request.path.startswith("/api/"):
            # Machines get JSON, and only the reason: never their own input echoed back.
            return jsonify({"error": exc.description}), exc.code
        template = "_error_fragment.html" if is_htmx() else "error.html"
        return render_template(template, error=exc, words=explain(exc)), exc.code

    @app.errorhandler(InternalServerError)
    def server_error(exc: HTTPException):
        # Flask has logged the original exception; the answer names none of it.
        code = exc.code or 500
        if request.path.startswith("/api/"):
            return jsonify({"error": "Internal error"}), code
        template = "_error_fragment.html" if is_htmx() else "error.html"
        words = explain(exc) if code != 500 else {**explain(InternalServerError()), "code": 500}
        try:
            return render_template(template, error=exc, words=words), code
        except Exception:
            current_app.logger.exception("The error page could not be drawn")
            return BARE_500, code, {"Content-Type": "text/html; charset=utf-8"}

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        template = "_error_fragment.html" if is_htmx() else "error.html"
        return render_template(template, error=exc, words=stale_form_words()), 400


def stale_form_words() -> dict:
    """A form whose token no longer matches the session: in words a person can act on, not
    the token's. Most often the session ended (signed out in another tab, or unused too long);
    else it was replaced by signing in again since the page was drawn."""

    # Where to come back to: the page the form is on (HTMX says which, a browser's Referer).
    page = request.headers.get("HX-Current-URL") or request.referrer or "/"
    if not current_user.is_authenticated:
        if is_htmx():  # the form, and what was typed in it, are still on the page
            advice = "Sign in again in a new tab, then come back here and send it again."
        else:
            advice = "Sign in again, then send it again."
        return {
            "code": 400,
            "heading": "You are signed out",
            "reason": "Nothing was sent: you signed out in another tab, or the registry was"
            " unused for a while",
            "advice": advice,
            "sign_in": url_for("auth.login", next=_local(page)),
        }
    return {
        "code": 400,
        "heading": "This page is out of date",
        "reason": "Nothing was sent: you signed in again since this page was opened",
        "advice": "Reload the page, then send it again.",
    }


def _local(url: str) -> str:
    """The path and query of ``url``: sign-in only ever sends people back within the registry."""

    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "") or "/"
