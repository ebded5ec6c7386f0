"""Which email each request event sends, to whom: written to the outbox in the same transaction."""

import json
from urllib.parse import urlsplit

from flask import current_app, render_template
from sqlalchemy import Text, cast, func, select

from .. import outbox
from ..audit import services as audit
from ..auth import services as accounts
from ..contract import STEP_LABELS
from ..extensions import db
from ..outbox.models import EmailStatus, OutboxEmail
from ..reference.models import Cluster
from ..timeutil import utcnow

# The session flag that tells the sender, after the commit, that there is mail to send.
OUTBOX_FLAG = "outbox_written"

# Subjects by email kind, and by request kind where an edit or a delete reads differently.
SUBJECTS = {
    "received": "Request received: {name} ({plate})",
    "awaiting_review": "Awaiting your review: {name} ({plate})",
    "approved": "Approved: {name} ({plate})",
    "rejected": "Rejected: {name} ({plate})",
    "cancelled": "Cancelled: {name} ({plate})",
    "provisioned": "Your namespaces are ready: {name} ({plate})",
    "failed": "Provisioning failed: {name} ({plate})",
    "stuck": "Stuck: {name} ({plate})",
    "comment": "New comment: {name} ({plate})",
    "increase_approved": "For your information, an increase approved on usage: {name} ({plate})",
    "increase_ending": "A temporary increase ends soon: {name} ({plate})",
    "saving_offer": "A saving on offer: {name} ({plate})",
    ("received", "edit"): "Change requested: {name} ({plate})",
    ("received", "delete"): "Deletion requested: {name} ({plate})",
    ("awaiting_review", "edit"): "Change awaiting your review: {name} ({plate})",
    ("awaiting_review", "delete"): "Deletion awaiting your review: {name} ({plate})",
    ("approved", "edit"): "Change approved: {name} ({plate})",
    ("approved", "delete"): "Deletion approved: {name} ({plate})",
    ("rejected", "edit"): "Change rejected: {name} ({plate})",
    ("rejected", "delete"): "Deletion rejected: {name} ({plate})",
    ("cancelled", "edit"): "Change cancelled: {name} ({plate})",
    ("cancelled", "delete"): "Deletion cancelled: {name} ({plate})",
    ("provisioned", "edit"): "Your change is applied: {name} ({plate})",
    ("provisioned", "delete"): "Deleted: {name} ({plate})",
    ("failed", "edit"): "Change failed: {name} ({plate})",
    ("failed", "delete"): "Deletion failed: {name} ({plate})",
}


def public_url(endpoint: str, **values) -> str:
    """An absolute link for email, built from PUBLIC_URL; works outside any web request."""
    base = urlsplit(current_app.config["PUBLIC_URL"])
    adapter = current_app.url_map.bind(
        base.netloc, script_name=base.path or "/", url_scheme=base.scheme or "https"
    )
    return adapter.build(endpoint, values, force_external=True)


def team_addresses(request) -> list[str]:
    """The product's contacts, every contact the request names or replaces (an edit tells the
    old and the new owner), and the requester."""
    addresses = [
        *request.product.contact_emails,
        *request.every_named_email,
    ]
    if not request.requested_by.is_machine:  # the registry or an API token: nobody reads it
        addresses.append(request.requested_by.email)
    return list(dict.fromkeys(addresses))


def reviewer_addresses() -> list[str]:
    addresses = accounts.super_admin_emails()
    for extra in current_app.config["EXTRA_REVIEWER_ADDRESSES"]:
        if extra.lower() not in addresses:
            addresses.append(extra.lower())
    return addresses


def enqueue(kind: str, recipients: list[str], request=None, **context) -> OutboxEmail | None:
    """Render one email and write it to the outbox. Sent by the sender after the commit."""
    recipients = list(dict.fromkeys(r for r in recipients if r))
    if not recipients:
        return None
    product = context.pop("product", None) or (request.product if request else None)
    context.update(request=request, product=product)
    if request is not None:
        context.setdefault("request_url", public_url("requests.detail", request_id=request.id))
    template = SUBJECTS.get((kind, request.type), SUBJECTS[kind]) if request else SUBJECTS[kind]
    subject = "[Product Registry] " + template.format(
        name=" ".join(product.name.split()) if product else "",
        plate=getattr(product, "licence_plate", ""),
    )
    email = OutboxEmail(
        kind=kind,
        request_id=request.id if request else None,
        recipients=recipients,
        subject=subject,
        body_text=render_template(f"email/{kind}.txt", **context),
        body_html=render_template(f"email/{kind}.html", **context),
        status=EmailStatus.PENDING.value,
        next_attempt_at=utcnow(),
    )
    db.session.add(email)
    outbox.written(OUTBOX_FLAG)
    return email


def request_moved(request, event) -> None:
    """Listens to the lifecycle's ``request_moved``: queue the emails of this step."""
    to = event.to_status
    if event.from_status is None and to == "pending":
        enqueue("received", team_addresses(request), request)
        enqueue(
            "awaiting_review",
            reviewer_addresses(),
            request,
            queue_url=public_url("review.queue"),
        )
    elif to == "approved" and event.from_status is None:
        # An edit the automatic-approval rules let through: one email, with the rule; and the
        # super admins hear of a quota increase that measured usage let through.
        enqueue("approved", team_addresses(request), request, note=event.note)
        if (request.usage_evidence or {}).get("passed"):
            enqueue("increase_approved", reviewer_addresses(), request, note=event.note)
    elif to == "approved" and event.from_status == "pending":
        enqueue("approved", team_addresses(request), request)
    elif to in ("rejected", "cancelled"):
        enqueue(to, team_addresses(request), request)
    elif to == "provisioned":
        enqueue("provisioned", team_addresses(request), request, **_provisioned_context(request))
    elif to == "failed":
        enqueue(
            "failed",
            team_addresses(request) + reviewer_addresses(),
            request,
            reason=event.note,
            step=STEP_LABELS.get(event.step, event.step) if event.step else None,
            cluster=event.cluster,
        )


def request_noted(request, event) -> OutboxEmail | None:
    """The lifecycle's signal for an entry that moves nothing: a comment is emailed."""
    if event.kind == "comment":
        return comment_written(request, event, event.actor)
    return None


def comment_written(request, event, author) -> OutboxEmail | None:
    """A comment goes to the other side: a super admin's to the team (the contacts and the
    requester), a team member's to the super admins and the extra reviewer addresses; never
    back to its author."""
    from_admins = author.is_super_admin
    recipients = team_addresses(request) if from_admins else reviewer_addresses()
    mine = (author.email or "").lower()
    return enqueue(
        "comment",
        [r for r in recipients if r.lower() != mine],
        request,
        comment=event.note,
        author_name=author.name,
        from_admins=from_admins,
    )


def _provisioned_context(request) -> dict:

    clusters = [db.session.get(Cluster, t.cluster) for t in request.targets]
    plate = request.product.licence_plate
    return {
        "namespaces": [f"{plate}-{env}" for env in ("tools", "dev", "test", "prod")],
        "clusters": clusters,
        "admins": request.product.contacts,
    }


def outgoing(status: str | None, page: int, per_page: int, addressed_to: str | None = None):
    """Outbox rows, newest first; ``addressed_to``: only those with that address among their
    recipients (to, cc and bcc are one list: ``OutboxEmail.recipients``)."""
    query = select(OutboxEmail).order_by(OutboxEmail.id.desc())
    if status:
        query = query.where(OutboxEmail.status == status)
    if addressed_to is not None:
        # The recipients are a JSON list of addresses; one whole quoted element matches, on
        # SQLite and PostgreSQL alike (JSON keeps its text as written).
        element = json.dumps(addressed_to.strip().lower())
        query = query.where(
            func.lower(cast(OutboxEmail.recipients, Text)).contains(element, autoescape=True)
        )
    return db.paginate(query, page=page, per_page=per_page, error_out=False)


def is_addressed_to(email: OutboxEmail, address: str) -> bool:
    address = address.strip().lower()
    return any(r.strip().lower() == address for r in email.recipients or [])


def retry(email_id: int) -> OutboxEmail:
    """Put a failed email back in the queue, to be sent at once."""
    email = db.session.get(OutboxEmail, email_id)
    if email is None:
        raise LookupError(email_id)
    if email.status != EmailStatus.FAILED:
        raise ValueError("Only a failed email can be retried.")
    email.status = EmailStatus.PENDING.value
    email.next_attempt_at = utcnow()
    email.claimed_until = None
    outbox.written(OUTBOX_FLAG)
    audit.record(
        "mail_retry",
        target=f"email #{email.id}",
        detail=f"{email.subject} to {', '.join(email.recipients)}; it had failed after"
        f" {email.attempts} attempts: {email.last_error or 'no error kept'}",
    )
    db.session.flush()
    return email
