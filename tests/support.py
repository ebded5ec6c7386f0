"""Helpers for tests that wait on other threads and processes."""

import asyncio
import time

import nats


def run_async(coroutine_function, url):
    """Run ``coroutine_function(js)`` against the server, on a connection of its own."""

    async def main():
        nc = await nats.connect(url, connect_timeout=3, max_reconnect_attempts=0)
        try:
            return await coroutine_function(nc.jetstream())
        finally:
            await nc.close()

    return asyncio.run(main())


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
