"""The registry's NATS threads end when told to, whenever they are told: also straight after
``start()``, before the thread has made its event loop. A stop lost in that moment left a worker
running on; the next test's rows then went to a NATS server nobody read."""

import logging

import pytest

from provisioner.worker import ProvisionerWorker
from registry.provisioning.worker import NatsWorker
from tests.conftest import free_port
from tests.support import eventually, in_a_thread


@pytest.mark.parametrize("kind", [NatsWorker, ProvisionerWorker])
def test_a_thread_stopped_straight_after_start_ends(app, kind, tmp_path):
    # A port nobody listens on: the thread would try to connect until stopped.
    app.config.update(
        NATS_URL=f"nats://127.0.0.1:{free_port()}", PROVISIONER_GITOPS_REPO=str(tmp_path / "gitops")
    )
    for _ in range(10):
        thread = kind(app)
        thread.start()
        thread.stop(timeout=3)
        assert not thread.is_alive(), "the thread ran on after stop()"


@pytest.mark.parametrize("kind", [NatsWorker, ProvisionerWorker])
def test_a_thread_stopped_while_it_retries_ends(app, kind, tmp_path):
    app.config.update(
        NATS_URL=f"nats://127.0.0.1:{free_port()}", PROVISIONER_GITOPS_REPO=str(tmp_path / "gitops")
    )
    thread = kind(app)
    thread.start()
    thread.join(0.5)  # it is trying to connect by now
    thread.stop(timeout=3)
    assert not thread.is_alive()


def test_a_connect_given_up_midway_closes_its_socket():
    """A stop that comes while the client waits for the server's greeting: the half-open
    connection is closed then, not left to the garbage collector (whose "unclosed transport"
    warning then failed whichever test was running when it collected)."""
    import asyncio
    import gc
    import warnings

    from registry import natsutil

    async def scenario():
        accepted, hung_up = asyncio.Event(), asyncio.Event()

        async def silent(reader, writer):  # accepts, and never sends NATS's INFO
            accepted.set()
            await reader.read()  # returns when the client closes its end
            hung_up.set()
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        stopping = asyncio.Event()
        connecting = asyncio.ensure_future(
            natsutil.connect(f"nats://127.0.0.1:{port}", "test", stopping)
        )
        await asyncio.wait_for(accepted.wait(), 5)
        stopping.set()
        assert await asyncio.wait_for(connecting, 5) is None
        # The client closed the connection when it gave up, not some time later.
        await asyncio.wait_for(hung_up.wait(), 2)
        server.close()
        await server.wait_closed()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        # In a thread: the browser tests' Playwright keeps a loop running on the main thread.
        in_a_thread(asyncio.run, scenario())
        gc.collect()
    unclosed = [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert not unclosed, [str(w.message) for w in unclosed]


@pytest.mark.parametrize("kind", [NatsWorker, ProvisionerWorker])
def test_a_thread_stopped_while_nats_is_away_ends_without_a_traceback(
    nats_app, nats_server, kind, tmp_path, caplog
):
    """Stopped during an outage, the client's close() raised ConnectionResetError and the thread
    ended on it (pytest reports an exception in a thread as a failure of the test)."""
    caplog.set_level(logging.DEBUG, logger="registry.natsutil")
    nats_app.config.update(PROVISIONER_GITOPS_REPO=str(tmp_path / "gitops"))
    thread = kind(nats_app)
    thread.start()
    assert thread.ready.wait(15)
    nats_server.stop()
    try:
        # Away long enough for the client to have given up its connection and to be trying
        # again, as it is in a real outage.
        eventually(
            lambda: (
                sum(r.getMessage().startswith("NATS client error") for r in caplog.records) >= 30
            ),
            timeout=120,
            interval=0.2,
        )
        thread.stop(timeout=10)
        assert not thread.is_alive()
    finally:
        nats_server.start()
