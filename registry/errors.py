from flask import render_template
from werkzeug.exceptions import HTTPException

from .htmx import is_htmx


def register(app) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        template = "_error_fragment.html" if is_htmx() else "error.html"
        return render_template(template, error=exc), exc.code

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        template = "_error_fragment.html" if is_htmx() else "error.html"
        return render_template(template, error=exc), 400
