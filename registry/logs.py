"""Logging for every entry point (``dev``, ``worker``, ``provisioner``, gunicorn through wsgi.py):
one line per event on standard error, as text, or as JSON lines with ``REGISTRY_LOG_FORMAT=json``
for a log collector. ``REGISTRY_LOG_LEVEL`` sets the level (INFO by default)."""

import json
import logging
import sys
from datetime import UTC, datetime

TEXT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class JSONLines(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(app) -> None:
    """Send every logger's records to standard error in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    json_lines = str(app.config["LOG_FORMAT"]).lower() == "json"
    handler.setFormatter(JSONLines() if json_lines else logging.Formatter(TEXT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(str(app.config["LOG_LEVEL"]).upper())
    # The registry says when NATS goes and comes; the client's own chatter is for debugging.
    logging.getLogger("nats").setLevel(max(root.level, logging.WARNING))
