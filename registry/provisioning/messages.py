"""Outbound: the provisioning messages an approval (or a re-send) writes to the outbox, one per
target cluster, in the transaction of the approval; the relay publishes them after the commit."""

from sqlalchemy import select

from .. import contract, outbox
from ..extensions import db
from ..outbox.models import OutboxMessage
from ..reference.models import Cluster, Ministry, QuotaOption
from ..requests import changes
from ..requests.models import Request, RequestStatus
from ..timeutil import utcnow
from .models import ProvisioningTarget

# The session flag that wakes the relay after a commit that wrote provisioning messages.
OUTBOX_FLAG = "provisioning_outbox_written"


def target_clusters(cluster: Cluster) -> list[str]:
    """The clusters a product on ``cluster`` is built on: gold also on golddr."""
    return [cluster.name] + ([cluster.paired_with] if cluster.paired_with else [])


def request_moved(request: Request, event) -> None:
    """Listens to the lifecycle's ``request_moved``: an approval (or a re-send) publishes."""
    if event.to_status == RequestStatus.APPROVED:
        _send(request)


def _send(request: Request) -> None:
    product = request.product
    data = request.granted_data
    cluster = db.session.get(Cluster, product.cluster_name)
    ministry = db.session.get(Ministry, data["ministry"])
    targets = {t.cluster: t for t in request.targets}
    for name in target_clusters(cluster):
        target = targets.get(name)
        if target is None:
            target = ProvisioningTarget(
                request=request,
                cluster=name,
                workflow=contract.workflow_name(name, product.licence_plate, request.id),
                attempt=request.attempt,
            )
            db.session.add(target)
        elif target.is_provisioned:
            continue  # a re-send only repeats what is not done
        else:
            target.attempt, target.step, target.failed_reason = request.attempt, None, None
            target.updated_at = utcnow()
        message = contract.provisioning_message(
            action=request.type,
            product_id=product.id,
            licence_plate=product.licence_plate,
            request_id=request.id,
            cluster_name=name,
            cluster_id=db.session.get(Cluster, name).number,
            data=data,
            alliance=ministry.alliance,
            quota_numbers=_quota_numbers(data),
            contact_changed=changes.contacts_changed(request.original_data, data),
        )
        db.session.add(
            OutboxMessage(
                request_id=request.id, subject=contract.provisioning_subject(name), payload=message
            )
        )
    outbox.written(OUTBOX_FLAG)
    db.session.flush()


def _quota_numbers(data: dict) -> dict[str, dict]:
    names = {name for quotas in data["namespaces"].values() for name in quotas.values()}
    options = db.session.scalars(select(QuotaOption).where(QuotaOption.name.in_(names)))
    return {o.name: o.quotas for o in options}
