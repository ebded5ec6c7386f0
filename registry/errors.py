from flask import jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from .htmx import is_htmx


def register(app) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if request.path.startswith("/api/"):
            # Machines get JSON, and only the reason: never their own input echoed back.
            return jsonify({"error": exc.description}), exc.code
        template = "_error_fragment.html" if is_htmx() else "error.html"
        return render_template(template, error=exc), exc.code

    from flask_wtf.csrf import CSRFError

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        template = "_error_fragment.html" if is_htmx() else "error.html"
        return render_template(template, error=exc), 400
