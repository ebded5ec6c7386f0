"""Helpers for tests that wait on other threads and processes."""

import asyncio
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nats


def run_async(coroutine_function, url):
    """Run ``coroutine_function(js)`` against the server, on a connection of its own."""

    async def main():
        nc = await nats.connect(servers=url.split(","), connect_timeout=3, max_reconnect_attempts=0)
        try:
            return await coroutine_function(nc.jetstream())
        finally:
            await nc.close()

    return in_a_thread(lambda: asyncio.run(main()))


def in_a_thread(function, *args, **kwargs):
    """Call ``function`` in a fresh thread and return its result (or raise its exception).

    Playwright's sync API runs its event loop in a greenlet of the main thread, which leaves
    that loop marked as running there for the rest of the session: once a browser test has run,
    ``asyncio.run()`` on the main thread fails. Code that runs a loop of its own (nats-py
    clients, the ``provisioner-report`` command) is called through this instead.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function, *args, **kwargs).result()


def eventually(check, timeout: float = 15.0, interval: float = 0.05, message: str = ""):
    """Poll ``check`` until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


ROOT = Path(__file__).resolve().parent.parent


class Gunicorn:
    """gunicorn serving ``wsgi:app`` from the project's root (so with its ``gunicorn.conf.py``),
    as the image does, with ``workers`` worker processes on ``port``. Its access log, one line a
    request, names the worker that answered (``%(p)s``)."""

    ACCESS_FORMAT = "%(p)s %(m)s %(U)s %(s)s"

    def __init__(self, env: dict, port: int, log_dir: Path, workers: int = 2):
        self.host = f"127.0.0.1:{port}"
        self.base = f"http://{self.host}"
        self.port = port
        self.access_log = log_dir / "gunicorn-access.log"
        self._log = (log_dir / "gunicorn.log").open("w")
        command = [
            Path(sys.executable).parent / "gunicorn",
            *("--workers", str(workers), "--bind", f"127.0.0.1:{port}"),
            *("--access-logfile", str(self.access_log)),
            *("--access-logformat", self.ACCESS_FORMAT),
            "wsgi:app",
        ]
        self.process = subprocess.Popen(  # noqa: S603 - the project's own command
            command, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_until_up(self, timeout: float = 30) -> None:
        def answers():
            assert self.process.poll() is None, "gunicorn ended: see gunicorn.log"
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=1):  # noqa: S310
                    return True
            except (OSError, urllib.error.URLError):
                return False

        eventually(answers, timeout=timeout, message="gunicorn did not start")

    def answered(self, method: str, path: str) -> list[tuple[int, int]]:
        """(worker pid, status) of each request to ``path``, in the order they were logged."""
        found = []
        for line in self.access_log.read_text().splitlines():
            pid, logged_method, logged_path, status = line.split()
            if (logged_method, logged_path) == (method, path):
                found.append((int(pid.strip("<>")), int(status)))
        return found

    def stop(self) -> None:
        """SIGTERM, as a pod is stopped; SIGKILL if it does not end in time: never left running."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._log.close()
