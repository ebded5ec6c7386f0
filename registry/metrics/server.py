"""Metrics for processes that serve no web pages (``flask worker``): with
``METRICS_PORT`` set, a small HTTP server in a daemon thread answers ``GET /metrics`` with this
process's counters and histograms (the bridge's, the mail sender's), under the same rule as the
web's ``/metrics``: ``METRICS_TOKEN`` or ``METRICS_ALLOWED_NETWORKS``. The database's gauges are
the web side's to serve: every process would report the same numbers.
"""

import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from . import access, exposition

log = logging.getLogger(__name__)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


def guarded(app, wsgi_app):
    """``wsgi_app`` for those the access rule lets in; 403 or 404 with no body for the rest."""
    networks = access.networks(app.config["METRICS_ALLOWED_NETWORKS"])

    def guard(environ, start_response):
        verdict = access.verdict(
            app.config,
            networks,
            environ.get("REMOTE_ADDR"),
            environ.get("HTTP_AUTHORIZATION"),
        )
        if verdict != access.OK:
            status = "403 Forbidden" if verdict == access.FORBIDDEN else "404 Not Found"
            start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "0")])
            return [b""]
        if environ.get("PATH_INFO", "/") not in ("/", "/metrics"):
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b""]
        return wsgi_app(environ, start_response)

    return guard


def serve(app):
    """Start the server on ``METRICS_PORT`` (``METRICS_HOST``) if set; returns it, or None."""
    port = app.config.get("METRICS_PORT")
    if not port:
        return None
    wsgi_app = make_wsgi_app(exposition.registry(database=False))
    server = make_server(
        app.config["METRICS_HOST"],
        int(port),
        guarded(app, wsgi_app),
        server_class=_Server,
        handler_class=_Quiet,
    )
    thread = threading.Thread(target=server.serve_forever, name="metrics-server", daemon=True)
    thread.start()
    log.info("Metrics on http://%s:%s/metrics", *server.server_address[:2])
    return server
