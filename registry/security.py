"""Security headers on every response, and the lifetime of a signed-in session.

Written here in a few lines rather than with flask-talisman: the policy is one short table that
can be read whole, Talisman's HTTPS redirect would fight the OpenShift router that ends TLS, and
the one response that needs another policy (the development mailbox's email body, shown in a
frame of our own) sets its own headers, which are kept.
"""

import time
from urllib.parse import urlsplit

from flask import current_app, flash, request, session
from flask_login import login_user, logout_user
from werkzeug.middleware.proxy_fix import ProxyFix


def content_security_policy(app) -> str:
    form_action = ["'self'"]
    # Signing out posts a form whose answer redirects to the identity provider; Chrome applies
    # form-action to that redirect.
    if app.config["OIDC_DISCOVERY_URL"]:
        parts = urlsplit(app.config["OIDC_DISCOVERY_URL"])
        form_action.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action " + " ".join(form_action),
            "frame-ancestors 'none'",
        ]
    )


def headers_for(app) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(app),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if app.config["ENV"] == "production" or app.config["PUBLIC_URL"].startswith("https://"):
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    return headers


def _add_headers(response):
    for name, value in current_app.extensions["registry_security_headers"].items():
        response.headers.setdefault(name, value)
    # Pages may show what only this user may see: no shared or back-button cache keeps them.
    # Static files (versioned names, public) stay cacheable.
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    return response


def _session_lifetime():
    """Sign out a session idle longer than SESSION_IDLE_MINUTES or older than SESSION_MAX_HOURS."""
    if "_user_id" not in session or request.endpoint == "static":
        return
    now = int(time.time())
    config = current_app.config
    signed_in_at = session.get("signed_in_at", 0)
    seen_at = session.get("seen_at", 0)
    if now - signed_in_at > config["SESSION_MAX_HOURS"] * 3600:
        end_session(
            "Your session ended: it was more than "
            f"{config['SESSION_MAX_HOURS']} hours old. Sign in again."
        )
    elif now - seen_at > config["SESSION_IDLE_MINUTES"] * 60:
        end_session(
            f"You were signed out after {config['SESSION_IDLE_MINUTES']} minutes without "
            "activity. Sign in again."
        )
    elif now - seen_at >= 60:  # write the cookie again at most once a minute
        session["seen_at"] = now


def end_session(message: str) -> None:
    """Sign this browser out now, with ``message`` on the sign-in page it is sent to."""
    logout_user()
    session.clear()
    flash(message, "info")


def start_session(user) -> None:
    """A new session for ``user``: nothing from before survives (session fixation)."""

    session.clear()
    session.permanent = True  # the cookie expires with SESSION_MAX_HOURS
    login_user(user)
    now = int(time.time())
    session["signed_in_at"] = now
    session["seen_at"] = now


def configure_headers(app) -> None:
    """Work out the headers from the settings (again, after a test changes them)."""
    app.extensions["registry_security_headers"] = headers_for(app)


def install(app) -> None:
    configure_headers(app)
    app.before_request(_session_lifetime)
    app.after_request(_add_headers)
    if app.config["TRUSTED_PROXIES"]:
        hops = int(app.config["TRUSTED_PROXIES"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
