"""Error pages in the registry's own words: what happened, what to do, a way home.

A 500 never shows what went wrong inside (the log has it): only that it was our fault and what
to try. Other errors keep a reason a view gave on purpose (``abort(403, "...")``, a CSRF
refusal), but not werkzeug's generic sentences, which are replaced by ours.
"""

from urllib.parse import urlsplit

import psycopg
from flask import current_app, jsonify, render_template, request, url_for
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from markupsafe import escape
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, InternalServerError

from .extensions import db
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
    for error in DATABASE_AWAY:
        app.register_error_handler(error, database_away)
    app.wsgi_app = AskOnceMore(app.wsgi_app)
    _follow_commits()

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


# --- the database went away under a request --------------------------------------------------
# pool_pre_ping replaces a dead connection when one is taken from the pool; a connection cut
# while a request holds it (a failover, a restart, a terminated backend, the network) fails
# that request. A GET is asked once more, as a new request on a new connection; if that fails
# too, or the request was a POST, the answer is 503 with Retry-After: a page that says to try
# again, and for a POST that nothing was saved (its transaction rolled back), or, when the
# connection was cut during the COMMIT itself, that it may have been.

DATABASE_AWAY = (OperationalError, DisconnectionError, psycopg.OperationalError)
RETRY_AFTER_SECONDS = 5
SAFE_METHODS = ("GET", "HEAD")
_ASK_AGAIN = "registry.ask_again"  # set by the handler: the middleware asks the app once more
_ASKED_AGAIN = "registry.asked_again"  # this is that second asking


class AskOnceMore:
    """WSGI: a GET or HEAD whose database connection was cut is answered by asking the app
    again, once, as a new request (new context, new session, new connection). Its first answer
    is held until then, and dropped. A streamed answer is not asked again once it streams."""

    def __init__(self, wsgi_app):
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") not in SAFE_METHODS:
            return self.wsgi_app(environ, start_response)
        pristine = dict(environ)  # before any middleware inside changed it
        held = {}

        def hold(status, headers, exc_info=None):
            held.update(status=status, headers=headers, exc_info=exc_info)
            return _no_write

        body = self.wsgi_app(environ, hold)
        if not environ.get(_ASK_AGAIN):
            start_response(held["status"], held["headers"], held["exc_info"])
            return body
        if hasattr(body, "close"):
            body.close()
        return self.wsgi_app({**pristine, _ASKED_AGAIN: True}, start_response)


def _no_write(data):  # WSGI's write(): Flask never calls it
    raise NotImplementedError("write() is not supported here; return an iterable")


def database_away(exc: Exception):
    """The error handler of :data:`DATABASE_AWAY`: ask once more (a GET), or 503."""
    in_doubt = _cut_during_commit(exc)
    try:
        db.session.rollback()  # let the connection go; the pool replaces it
    except Exception:  # the rollback meets the same cut: nothing more to release
        current_app.logger.debug("Rolling back after a lost connection failed", exc_info=True)
    where = f"{request.method} {request.path}"
    reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    safe = request.method in SAFE_METHODS
    if safe and not request.environ.get(_ASKED_AGAIN):
        current_app.logger.warning("Database connection lost during %s, asking once more: %s",
                                   where, reason)  # fmt: skip
        request.environ[_ASK_AGAIN] = True
        return "", 503
    current_app.logger.error("The database could not be reached for %s: %s", where, reason,
                             exc_info=exc)  # fmt: skip
    words = _unavailable_words(safe, in_doubt)
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.path.startswith("/api/"):
        return jsonify({"error": f"{words['reason']} {words['advice']}"}), 503, headers
    template = "_error_fragment.html" if is_htmx() else "unavailable.html"
    try:
        # Without the context processors: Flask-Login's would load the signed-in user, from the
        # database that is away.
        page = current_app.jinja_env.get_template(template).render(words=words)
        return page, 503, headers
    except Exception:
        current_app.logger.exception("The unavailable page could not be drawn")
        page = BARE_503.format(**{k: escape(v) for k, v in words.items()})
        return page, 503, {**headers, "Content-Type": "text/html; charset=utf-8"}


def _unavailable_words(safe: bool, in_doubt: bool) -> dict:
    heading = "The registry cannot reach its database just now"
    if safe:
        reason = "The connection to the database was cut while this page was being read."
        advice = "Try again in a minute."
    elif in_doubt:
        reason = (
            "The connection to the database was cut as your change was being saved: it may "
            "have been saved, or not."
        )
        advice = "In a minute, open the page again to see whether it was before you send it again."
    else:
        reason = (
            "Nothing was saved: the connection to the database was cut before your change was "
            "saved, and all of it was undone."
        )
        advice = "Try again in a minute: send it again."
    return {"code": 503, "heading": heading, "reason": reason, "advice": advice}


# The fallback when even that page cannot be drawn.
BARE_503 = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{heading} · Product Registry</title></head><body><main>
<h1>{heading}</h1><p>{reason}</p><p>{advice}</p>
<p><a href="/">Back to the registry</a></p></main></body></html>"""


def _cut_during_commit(exc: Exception) -> bool:
    """Whether the connection was lost while the session was committing and the error came
    from no statement of its own (the COMMIT itself): then the outcome is not known."""
    committing = db.session.info.pop("committing", False)
    return committing and isinstance(exc, DBAPIError) and exc.statement is None


def _follow_commits() -> None:
    """Mark a session as committing from its commit's start to its end (or to the rollback
    that follows a failed one)."""
    for name, listener in (
        ("before_commit", _committing),
        ("after_commit", _settled),
        ("after_rollback", _settled),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


def _committing(session) -> None:
    session.info["committing"] = True


def _settled(session) -> None:
    session.info.pop("committing", None)
