"""Helpers for tests that wait on other threads and processes."""

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

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
