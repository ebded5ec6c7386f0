"""The provisioner side as a runnable reference (steps 6-16 of the business process).

It shares nothing with the registry but the message contract: it reads provisioning messages
from NATS, writes manifests to a GitOps repository, and reports each step back on NATS.
"""

from flask import Blueprint

bp = Blueprint("provisioner", __name__, cli_group=None)

from . import cli  # noqa: E402, F401
