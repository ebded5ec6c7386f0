"""The registry's NATS threads end when told to, whenever they are told: also straight after
``start()``, before the thread has made its event loop. A stop lost in that moment left a worker
running on; the next test's rows then went to a NATS server nobody read."""

import pytest

from registry.provisioner.worker import ProvisionerWorker
from registry.provisioning.worker import NatsWorker

from .conftest import free_port


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
