"""A small NATS helper, shared by the registry's worker and the reference provisioner (which needs
nothing else of the registry but the message contract).

It connects, and keeps connected, and says so in the log once when the server is lost and once
when it is back: a server away for a minute is two lines, not a traceback per retry.
"""

import asyncio
import contextlib
import logging

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
        try:
            nc = await nats.connect(
                servers=servers(url),
                name=name,
                connect_timeout=2,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            )
        except Exception as exc:  # NATS away: keep trying, quietly
            link.down(f"{type(exc).__name__}: {exc}")
            await sleep_unless(stopping, delay)
            delay = min(delay * 2, RETRY_MAX_SECONDS)
        else:
            link.up()
            return nc
    return None
