"""The Product Registry: product teams request namespaces, super admins decide, everyone is told."""

from pathlib import Path

from flask import Flask, redirect, url_for
from flask_login import current_user

from . import config, inputs, metrics, security
from .extensions import csrf, db, login_manager, mail, migrate

MIGRATIONS = str(Path(__file__).parent / "migrations")


def create_app(test_config: dict | None = None) -> Flask:
    """Build the application. No side effects: no migrations, no network, no threads."""
    app = Flask(__name__, instance_relative_config=True)
    config.load(app, test_config)
    # Before any route is added: ids in paths are bounded (registry/inputs.py).
    app.url_map.converters["id"] = inputs.IdConverter

    db.init_app(app)
    migrate.init_app(app, db, directory=MIGRATIONS, render_as_batch=True)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to continue."
    login_manager.login_message_category = "info"
    mail.init_app(app)
    csrf.init_app(app)
    security.install(app)

    from . import (
        models,  # noqa: F401  (every table, for Alembic and create_all)
        wiring,
    )
    from .api import bp as api_bp
    from .api.pages import pages as api_pages
    from .audit import bp as audit_bp
    from .auth import bp as auth_bp
    from .auth import oidc
    from .capacity import bp as capacity_bp
    from .cli import register as register_cli
    from .errors import register as register_errors
    from .filters import register as register_filters
    from .health import bp as health_bp
    from .htmx import add_vary
    from .notifications import bp as notifications_bp
    from .operations import bp as operations_bp
    from .products import bp as products_bp
    from .provisioning import bp as provisioning_bp
    from .reference import bp as reference_bp
    from .requests import asking, finding, review
    from .requests import bp as requests_bp
    from .requests import filters as request_filters
    from .webhooks import bp as webhooks_bp

    for blueprint in (
        auth_bp,
        reference_bp,
        products_bp,
        requests_bp,
        asking.bp,
        review.bp,
        finding.bp,
        notifications_bp,
        provisioning_bp,
        health_bp,
        audit_bp,
        operations_bp,
        capacity_bp,
        api_bp,
        api_pages,
        webhooks_bp,
    ):
        app.register_blueprint(blueprint)
    oidc.init_app(app)
    metrics.init_app(app)
    register_cli(app)
    register_errors(app)
    register_filters(app)
    request_filters.register(app)
    app.after_request(add_vary)
    inputs.install(app)
    wiring.connect_reactions()

    @app.get("/")
    def index():
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login"))
        if current_user.is_super_admin:
            return redirect(url_for("review.queue"))
        if current_user.is_support:
            return redirect(url_for("finding.all_requests"))
        return redirect(url_for("products.mine"))

    @app.get("/favicon.ico")
    def favicon():
        # Browsers and tools ask for /favicon.ico whatever the page links: send them to the SVG.
        return redirect(url_for("static", filename="favicon.svg"), 301)

    return app
