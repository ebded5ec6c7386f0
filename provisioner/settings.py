"""The provisioner's settings: defaults, overridden by ``REGISTRY_<NAME>`` environment variables,
so the registry's ConfigMap serves its worker and the provisioner alike."""

import json
import os
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ENV_PREFIX = "REGISTRY_"

DEFAULTS = {
    "NATS_URL": None,
    "NATS_STREAM": "REGISTRY",
    # The GitOps repository; None: ``instance/gitops`` under the working directory.
    "PROVISIONER_GITOPS_REPO": None,
    # Where people browse that repository (e.g. https://github.com/org/gitops): the registry's
    # timeline links each commit there. None: the timeline names the commit and its branch only.
    "PROVISIONER_GITOPS_WEB_URL": None,
    "PROVISIONER_DURABLE": "provisioner",
    # How long a delivered provisioning message may go without word before NATS hands it out
    # again: a workflow that runs longer says "in progress" a few times within it, and a message
    # whose "try again" was lost (a node dying at that moment) comes back after this, not later.
    "PROVISIONER_ACK_WAIT_SECONDS": 20,
    # Rules that make a chosen step fail, e.g. [{"step": "manifests_committed",
    # "match": "^[a-f0-9]{6} Broken"}] (matched against "<licence plate> <display name>").
    "PROVISIONER_FAIL_RULES": [],
    # Serve the simulated workload of the namespaces it created (provisioner/workload.py) on
    # this port at /metrics, for a Prometheus to scrape; None: off.
    "PROVISIONER_METRICS_PORT": None,
    "PROVISIONER_METRICS_HOST": "127.0.0.1",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",
}


@dataclass
class Settings:
    """What the worker reads: ``config[NAME]`` and ``instance_path`` (a Flask app has both)."""

    config: Mapping = field(default_factory=lambda: dict(DEFAULTS))
    instance_path: str = "instance"

    @classmethod
    def of(cls, values: Mapping, instance_path: str | Path = "instance") -> "Settings":
        """``values`` (read as they are at each use), else the defaults."""
        return cls(ChainMap(values, DEFAULTS), str(instance_path))

    @classmethod
    def from_environment(cls, environ=os.environ) -> "Settings":
        values = {}
        for name in DEFAULTS:
            raw = environ.get(ENV_PREFIX + name)
            if raw is not None:
                values[name] = _parse(raw)
        return cls.of(values, environ.get(ENV_PREFIX + "INSTANCE_PATH", "instance"))


def _parse(value: str):
    try:
        return json.loads(value)
    except ValueError:
        return value
