"""What a scrape returns: this process's metrics, or every process's in multiprocess mode, and
(on the web side) the database's gauges."""

import os

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# The classic text format, which every Prometheus version reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _Each:
    """Several collectors as one (the default registry is one too)."""

    def __init__(self, *collectors):
        self.collectors = collectors

    def collect(self):
        for collector in self.collectors:
            yield from collector.collect()


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def registry(database: bool = True) -> CollectorRegistry:
    """A fresh registry for one scrape. With ``PROMETHEUS_MULTIPROC_DIR``: the sum over every
    process that wrote there (gunicorn's workers); without: this process's default registry."""
    fresh = CollectorRegistry(auto_describe=False)
    path = multiprocess_dir()
    if path:
        MultiProcessCollector(fresh, path=path)
    else:
        fresh.register(_Each(REGISTRY))
    if database:
        # Here, not at the top: the reference provisioner serves its metrics with this module
        # and must not depend on the registry's database (tests/app/test_structure.py).
        from .collector import DatabaseCollector

        fresh.register(DatabaseCollector())
    return fresh


def latest(database: bool = True) -> bytes:
    return generate_latest(registry(database))
