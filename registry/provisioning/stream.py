"""The JetStream stream that keeps every registry subject: requests to the provisioner and its
reports. Created at start, or brought up to date."""

import logging

from nats.js.api import RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from sqlalchemy import select

from .. import contract
from ..extensions import db
from ..reference.models import Cluster

log = logging.getLogger(__name__)


def stream_subjects(app) -> list[str]:
    """Every registry subject. The contract's subjects have no dots, so a NATS wildcard (which
    matches whole dot-separated tokens) cannot cover them: one subject per cluster, from the
    clusters table, and the status subject."""

    with app.app_context():
        clusters = db.session.scalars(select(Cluster.name).order_by(Cluster.number)).all()
    return [contract.provisioning_subject(c) for c in clusters] + [contract.STATUS_SUBJECT]


def stream_config(app) -> StreamConfig:
    """The stream that keeps every registry subject: requests to the provisioner and its reports."""
    return StreamConfig(
        name=app.config["NATS_STREAM"],
        subjects=stream_subjects(app),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_age=app.config["NATS_STREAM_MAX_AGE_DAYS"] * 86400,
        duplicate_window=app.config["NATS_DUPLICATE_WINDOW_SECONDS"],
        # 3 on a three-node JetStream cluster: the stream and its consumers survive a node.
        num_replicas=app.config["NATS_STREAM_REPLICAS"],
    )


async def ensure_stream(js, app) -> None:
    """Create the stream, or bring an existing one's subjects and limits up to date."""
    config = stream_config(app)
    try:
        await js.stream_info(config.name)
    except NotFoundError:
        await js.add_stream(config)
        log.info("Created stream %s", config.name)
    else:
        await js.update_stream(config)
