"""A small NATS helper, shared by the registry's worker and the reference provisioner (which needs
nothing else of the registry but the message contract).

It connects, and keeps connected, and says so in the log once when the server is lost and once
when it is back: a server away for a minute is two lines, not a traceback per retry.
"""

import asyncio
import contextlib
import logging
import threading

import nats

from .availability import Availability

log = logging.getLogger(__name__)

# While NATS is away, try again at least this often: the backlog goes out soon after it returns.
RETRY_MAX_SECONDS = 2.0


def servers(url) -> list[str]:
    """The servers of ``REGISTRY_NATS_URL``: one URL, several separated by commas (the nodes of a
    cluster; the client moves to another when one goes away), or a list."""
    if isinstance(url, list | tuple):
        return [str(u).strip() for u in url if str(u).strip()]
    return [u.strip() for u in str(url).split(",") if u.strip()]


def new_link(url) -> Availability:
    """How a process's connection to the NATS server at ``url`` stands."""
    return Availability(f"NATS at {', '.join(servers(url))}")


async def sleep_unless(stopping: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stopping`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def connect(
    url,
    name: str,
    stopping: asyncio.Event,
    link: Availability | None = None,
    on_reconnect=None,
):
    """Connect to NATS, retrying while it is away; None if stopped first. Once connected, the
    client reconnects by itself; ``on_reconnect`` (a coroutine function) runs each time it has."""
    link = link or new_link(url)

    async def disconnected():
        if not stopping.is_set():  # not our own close at shutdown
            link.down("connection lost")

    async def reconnected():
        link.up()
        if on_reconnect is not None:
            await on_reconnect()

    async def error(exc: Exception):
        # nats-py's default logs a traceback for every failed reconnect; one line is enough.
        log.debug("NATS client error: %s", exc)
        if not link.reachable:
            link.down(f"{type(exc).__name__}: {exc}")

    delay = 0.1
    while not stopping.is_set():
        # With no limit on reconnects, nats-py's connect() itself retries until a server
        # answers, and never looks at ``stopping``: a stop waits for it no longer.
        # The client is made here, not in nats.connect(), so that an attempt given up midway
        # can still be closed: its half-open socket is not left to the garbage collector.
        client = nats.NATS()
        attempt = asyncio.ensure_future(
            client.connect(
                servers=servers(url),
                name=name,
                connect_timeout=2,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            )
        )
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({attempt, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if stopping.is_set():
            await _abandon(attempt, client)
            return None
        try:
            attempt.result()
        except Exception as exc:  # NATS away: keep trying, quietly
            link.down(f"{type(exc).__name__}: {exc}")
            await sleep_unless(stopping, delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
        else:
            link.up()
            return client
    return None


async def close(client) -> None:
    """Close a client at shutdown, whether or not the server is there: a client waiting to
    reconnect raised ConnectionResetError from close(), and the thread ended on a traceback
    while NATS was away."""
    with contextlib.suppress(ConnectionError, OSError):
        await client.close()


async def _abandon(attempt: asyncio.Future, client) -> None:
    """Cancel a connect() in progress, then close its client, whether it had connected, was
    still midway or had failed (``stopping`` is set: its callbacks report nothing).

    A cancellation can be lost (Python 3.11's ``wait_for`` swallows it when the connection is
    refused at the same moment, and nats-py then tries the next server), so it is repeated
    until the attempt has ended."""
    while not attempt.done():
        attempt.cancel()
        await asyncio.wait({attempt}, timeout=0.1)
    if not attempt.cancelled():
        attempt.exception()  # seen: not logged as never retrieved
    with contextlib.suppress(Exception):
        await client.close()


class LoopThread(threading.Thread):
    """A daemon thread that runs ``main()`` in an event loop of its own until ``stop()``.

    ``stop()`` may come at any moment, also before the thread has made its loop: it is then
    remembered and the thread ends as soon as it starts, instead of running on unstopped."""

    def __init__(self, name: str):
        super().__init__(name=name, daemon=True)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping: asyncio.Event | None = None
        self._stop_asked = threading.Event()

    def run(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        if self._stop_asked.is_set():  # asked before the loop existed
            self.stopping.set()
        await self.main()

    async def main(self) -> None:
        raise NotImplementedError

    def stop(self, timeout: float = 10) -> None:
        self._stop_asked.set()
        loop, stopping = self.loop, self.stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stopping.set)
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
