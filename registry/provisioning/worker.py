"""The registry's NATS worker: one event loop in a daemon thread that connects (and reconnects),
ensures the stream, then runs the relay and the bridge until stopped.

nats-py is asyncio; database work runs in that thread inside an app context per message or
batch, through the same service functions the views call.
"""

import asyncio
import logging
import threading

from nats.errors import Error as NatsError
from sqlalchemy.exc import OperationalError

from ..extensions import database_error
from ..natsutil import LoopThread, close, connect, new_link, sleep_unless
from . import bridge, relay
from .stream import ensure_stream

log = logging.getLogger(__name__)


class NatsWorker(LoopThread):
    """Connects (and reconnects), ensures the stream, then runs the relay and the bridge."""

    def __init__(self, app, relay: bool = True, bridge: bool = True):
        super().__init__(name="nats-worker")
        self.app = app
        self.relay, self.bridge = relay, bridge
        self.link = new_link(app.config["NATS_URL"])
        self.ready = threading.Event()  # connected, stream ensured, consumer bound
        self.bridge_pending: int | None = None  # reports waiting in the stream, last we asked

    def stop(self, timeout: float = 10) -> None:
        relay.wake.set()  # the relay loop waits on it in a thread of its own
        super().stop(timeout)

    async def main(self) -> None:
        nc = await connect(
            self.app.config["NATS_URL"],
            "product-registry",
            self.stopping,
            self.link,
            on_reconnect=self._reconnected,
        )
        if nc is None:
            return
        js = nc.jetstream()
        tasks = []
        try:
            await self._retrying(lambda: ensure_stream(js, self.app))
            await self._reconnected()
            if self.relay:
                tasks.append(asyncio.create_task(self._relay_loop(nc, js)))
            if self.bridge:
                tasks.append(asyncio.create_task(self._bridge_loop(js)))
            self.ready.set()
            await self.stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            # The relay may be waiting for a wake in a thread of its own, which no cancel
            # reaches: release it, or the loop's shutdown waits for its poll to run out.
            relay.wake.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            await close(nc)

    async def _reconnected(self) -> None:
        """NATS is (back) up: what waited for it is due now, not at its backoff."""
        if self.relay:
            await asyncio.to_thread(relay.due_now, self.app)
            relay.wake.set()

    def _pending(self, count: int) -> None:
        self.bridge_pending = count

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless(self.stopping, seconds)

    async def _retrying(self, make_coroutine) -> None:
        delay = 0.1
        while not self.stopping.is_set():
            try:
                return await make_coroutine()
            except Exception as exc:
                log.debug("NATS call failed (%s); retrying in %.1fs", exc, delay)
                await self._sleep(delay)
                delay = min(delay * 2, 2)

    async def _relay_loop(self, nc, js) -> None:
        poll = self.app.config["NATS_RELAY_POLL_SECONDS"]
        while not self.stopping.is_set():
            relay.wake.clear()
            wait = poll
            if nc.is_connected:
                try:
                    while await relay.relay_once(js, self.app):
                        pass
                    wait = relay.next_due_in(self.app, poll)
                except (NatsError, TimeoutError) as exc:
                    log.warning("Relay round paused: %s", exc or type(exc).__name__)
                except OperationalError as exc:  # the database restarted or cut the connection
                    log.warning("Relay round cut short: %s", database_error(exc))
                    wait = 1
                except Exception:
                    log.exception("Relay round failed")
            # Woken by a commit (this process's hook, or another's NOTIFY) or by a reconnect.
            await asyncio.to_thread(relay.wake.wait, wait)

    async def _bridge_loop(self, js) -> None:
        while not self.stopping.is_set():
            try:
                await bridge.consume(js, self.app, self.stopping, on_pending=self._pending)
            except asyncio.CancelledError:
                raise
            except (NatsError, TimeoutError) as exc:
                # A node of the cluster away, a stream leader being elected: one line, no trace.
                if self.link.reachable:
                    log.warning("Bridge paused: %s; starting again", exc or type(exc).__name__)
                else:
                    log.debug("Bridge waits for NATS: %s", exc)
                await self._sleep(1)
            except Exception:
                log.exception("Bridge stopped; starting again")
                await self._sleep(1)
