"""The reference provisioner's simulated workload: what a real Prometheus scrapes on one machine.
Its namespaces come from the GitOps repository's main; its counters only grow, at the rate it
says on average; and a real Prometheus scraping it gives the registry usage and headroom."""

import itertools
import time
import urllib.request

import pytest

from provisioner import workload
from registry.extensions import db
from registry.products.models import Product
from registry.usage import clusters, namespaces
from tests.provisioner.test_day_two_provisioner import provisioned_product
from tests.support import eventually


def test_the_cpu_counter_grows_at_its_rate_on_average():
    ns = workload.Namespace("silver", "abc123-prod", cpu=2, memory=4, storage=1)
    day = [workload.cpu_seconds(ns, t) for t in range(0, workload.DAY + 1, 60)]
    assert all(b > a for a, b in itertools.pairwise(day))  # a counter never falls
    assert (day[-1] - day[0]) / workload.DAY == pytest.approx(ns.share * 2, rel=1e-6)
    # Per plate, the same share every time: some products busy, some idle.
    assert workload.Namespace("gold", "abc123-prod", 1, 1, 1).share == ns.share
    shares = {workload.Namespace("silver", f"{n:06x}-prod", 1, 1, 1).share for n in range(50)}
    assert min(shares) < 0.3 and max(shares) > 0.6


def test_a_real_prometheus_scraping_the_provisioner_gives_usage_and_headroom(
    provisioner, gitops, nats_app, owner, admin, prometheus
):
    product = provisioned_product(owner, admin)
    plate = product.licence_plate
    metrics = workload.MetricsServer(provisioner.repo, time.time).start()
    try:
        with urllib.request.urlopen(metrics.url, timeout=5) as response:  # noqa: S310
            scraped = response.read().decode()
        assert f'namespace="{plate}-prod"' in scraped
        assert 'kube_node_status_allocatable{node="silver-node-1",resource="cpu"} 64' in scraped

        prometheus([], scrape=f"127.0.0.1:{metrics.port}")

        def measured():
            nats_app.extensions.pop("usage.kept", None)
            found = namespaces.measure(plate, "silver")
            return found if found.available and found.of("prod", "memory").now else None

        found = eventually(measured, timeout=60, interval=0.5, message="nothing scraped")
        prod = workload.Namespace("silver", f"{plate}-prod", cpu=0.5, memory=2, storage=1)
        # Memory and storage at the simulated share of the quotas written to main.
        memory = prod.share * 2 * workload.rhythm(time.time())
        assert found.of("prod", "memory").now == pytest.approx(memory, rel=0.05)
        assert found.of("prod", "storage").now == pytest.approx(prod.share * 1, rel=0.01)
        assert found.of("prod", "storage").capacity == pytest.approx(1)
        room = clusters.measure("silver")
        assert room.available and room.cpu_allocatable == 64
        assert room.cpu_given == pytest.approx(2)  # four namespaces of 0.5 cores
    finally:
        metrics.stop()
    db.session.rollback()
    assert db.session.get(Product, product.id).licence_plate == plate
