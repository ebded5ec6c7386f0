from urllib.parse import urlsplit

import requests
from flask import (
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, logout_user

from .. import security
from ..audit import services as audit
from ..extensions import csrf, db, login_manager
from . import bp, guessing, id_tokens, oidc, oidc_answer, provider_sessions, services
from .forms import LoginForm
from .models import User

bp.before_app_request(provider_sessions.check)


@login_manager.user_loader
def load_user(user_id: str) -> User | None:
    """The user of a session, only if the session was made since their last sign-out, role
    change or deactivation (the version in ``User.get_id``)."""
    user_part, _, version = user_id.partition(".")
    if not (user_part.isdigit() and version.isdigit()):
        return None  # a session from before versions, or made up: sign in again
    user = db.session.get(User, int(user_part))
    if user is None or user.session_version != int(version):
        return None
    return user


def _safe_next(target: str | None) -> str:
    # Only same-site paths: an open redirect after login is a phishing tool. Browsers read "\\"
    # as "/" and drop tabs and newlines, so "/\\evil.example" is refused as well as "//evil".
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not any(ord(ch) < 32 or ord(ch) == 127 for ch in target)
    ):
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("index")


def _login_page(form, status: int, refusal: str | None = None):
    return render_template(
        "auth/login.html",
        form=form,
        refusal=refusal,
        oidc_enabled=oidc.enabled(),
        provider=current_app.config["OIDC_PROVIDER_NAME"],
        passwords=current_app.config["PASSWORD_LOGIN"],
    ), status


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("index"))
    form = LoginForm()
    if request.method == "POST":
        if not current_app.config["PASSWORD_LOGIN"]:
            abort(404)
        if form.validate_on_submit():
            try:
                attempt = guessing.begin(form.email.data, request.remote_addr)
            except guessing.TooManyAttempts as exc:
                return _too_many_attempts(form, exc)
            user = services.authenticate(form.email.data, form.password.data)
            if user:
                attempt.succeeded()  # only refusals count
                security.start_session(user)
                audit.record("sign_in", actor=user, detail="password")
                db.session.commit()
                return redirect(_safe_next(request.args.get("next")), 303)
            audit.record(
                "sign_in_failed",
                actor_label=services.normalise_email(form.email.data or ""),
                detail="wrong email or password",
            )
            db.session.commit()
            form.password.errors.append("Email or password is not right.")
    return _login_page(form, 422 if form.errors else 200)


def _too_many_attempts(form, exc: guessing.TooManyAttempts):
    """Refused unseen: the page says how long to wait, and so does ``Retry-After``."""
    refusal = (
        f"Too many refused sign-ins for {exc.who}. Try again in {exc.wait} "
        f"second{'s' if exc.wait != 1 else ''}."
    )
    audit.record(
        "sign_in_failed",
        actor_label=services.normalise_email(form.email.data or ""),
        detail=f"refused without checking: too many attempts for {exc.who}",
    )
    db.session.commit()
    response = current_app.make_response(_login_page(form, 429, refusal))
    response.headers["Retry-After"] = str(exc.wait)
    return response


@bp.get("/login/oidc")
def oidc_start():
    if not oidc.enabled():
        abort(404)
    session["next"] = _safe_next(request.args.get("next"))
    try:
        return oidc.client().authorize_redirect(oidc.redirect_uri())
    except oidc_answer.PROVIDER_ERRORS as exc:
        # Its discovery document could not be read: nothing was tried, nothing to record.
        current_app.logger.warning("The identity provider cannot be reached: %r", exc)
        flash(oidc_answer.UNREACHABLE, "error")
        return redirect(url_for("auth.login"))


@bp.get("/login/oidc/callback")
def oidc_callback():
    if not oidc.enabled():
        abort(404)
    try:
        answer = oidc_answer.finish()
        user = oidc.user_for(answer.claims)
    except oidc_answer.NotStartedHere as exc:
        # Anyone can send this address anything: only an answer to a sign-in this browser
        # started is a sign-in attempt worth recording.
        flash(exc.message, "error")
        return redirect(url_for("auth.login"))
    except (oidc_answer.SignInFailed, oidc.SignInRefused) as exc:
        db.session.rollback()
        if isinstance(exc, oidc_answer.SignInFailed):
            message, reason = exc.message, exc.reason
        else:
            message, reason = f"Sign-in did not work: {exc}", str(exc)
        audit.record("sign_in_failed", actor_label="single sign-on", detail=reason[:500])
        db.session.commit()
        flash(message, "error")
        return redirect(url_for("auth.login"))
    target = session.get("next")
    security.start_session(user)
    provider_sessions.start(user, answer)
    audit.record("sign_in", actor=user, detail="single sign-on")
    db.session.commit()
    return redirect(_safe_next(target), 303)


@bp.post("/login/oidc/backchannel-logout")
@csrf.exempt  # the identity provider calls it, server to server, with a signed logout token
def oidc_backchannel_logout():
    """OpenID Connect Back-Channel Logout 1.0: the provider says a person's session (``sid``)
    or every session of theirs (``sub``) has ended there; they end here too."""
    if not oidc.enabled():
        abort(404)
    try:
        provider_sessions.backchannel_logout(request.form.get("logout_token"))
    except id_tokens.TokenRefused as exc:
        db.session.rollback()
        return jsonify(
            error="invalid_request", error_description=f"The logout token was refused: {exc}."
        ), 400
    except requests.RequestException as exc:
        db.session.rollback()
        current_app.logger.warning("A logout token could not be checked: %r", exc)
        return jsonify(
            error="temporarily_unavailable",
            error_description="The identity provider's keys could not be read.",
        ), 503
    db.session.commit()
    return "", 200


@bp.post("/logout")
@login_required
def logout():
    user = db.session.get(User, current_user.id)
    id_token = provider_sessions.end_all(user)
    # Every session of this user ends, here and on any other device or stolen copy.
    user.end_sessions()
    audit.record("sign_out", actor=user)
    db.session.commit()
    logout_user()
    session.clear()
    if id_token and oidc.enabled():
        try:
            provider_logout = oidc.end_session_url(id_token)
        except oidc_answer.PROVIDER_ERRORS as exc:
            current_app.logger.warning("The identity provider cannot be reached: %r", exc)
            provider_logout = None
        if provider_logout:
            return redirect(provider_logout, 303)
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"), 303)
