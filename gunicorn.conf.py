"""gunicorn's settings, read from the working directory by default (``gunicorn wsgi:app``).

Prometheus in multiprocess mode: each worker writes its counters and histograms to files in
``PROMETHEUS_MULTIPROC_DIR`` and ``/metrics``, whichever worker answers, adds every worker's up.
Without the variable, a fresh temporary directory is used: with several workers, one worker's
numbers alone would be wrong. The variable is set here, in the master, before any worker imports
prometheus_client (which picks its mode at import).
"""

import gc
import os
import shutil
import tempfile

_made_here = None
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _made_here = tempfile.mkdtemp(prefix="registry-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_here


def on_starting(server):
    """Empty the directory: files of an earlier run would count again."""
    path = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        entry = os.path.join(path, name)
        if os.path.isdir(entry) and not os.path.islink(entry):
            shutil.rmtree(entry)
        else:
            os.remove(entry)


def child_exit(server, worker):
    """A worker ended: its live gauges go (its counters stay, as they should)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    """gunicorn stops: a directory it made for itself goes with it."""
    if _made_here:
        shutil.rmtree(_made_here, ignore_errors=True)


def post_worker_init(worker):
    """The worker has loaded the app: what it made to get there (modules, the app, compiled
    templates and statements) lives as long as the worker, so the garbage collector is told to
    stop walking it. Each request's collections then look at that request's objects alone
    (measured: 2.5 to 3 ms less a page)."""
    gc.collect()
    gc.freeze()
