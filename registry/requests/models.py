"""Requests and their events. The lifecycle that moves them lives in ``lifecycle.py``."""

import enum
import re
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..contract import STEP_LABELS, STEPS
from ..extensions import db, in_values
from ..products.models import Product
from ..timeutil import utcnow


class RequestType(enum.StrEnum):
    CREATE = "create"
    EDIT = "edit"
    DELETE = "delete"

    @property
    def label(self) -> str:
        return {"create": "New product", "edit": "Change", "delete": "Deletion"}[self]


class RequestStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"  # sent to the provisioner, no step reported yet
    PROVISIONING = "provisioning"  # the provisioner reports steps
    PARTIALLY_PROVISIONED = "partially_provisioned"  # gold done, golddr not yet (or the reverse)
    PROVISIONED = "provisioned"
    FAILED = "failed"  # a step failed; a super admin can re-send
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {
            "pending": "Pending approval",
            "approved": "Approved",
            "provisioning": "Provisioning",
            "partially_provisioned": "Partially provisioned",
            "provisioned": "Provisioned",
            "failed": "Failed",
            "rejected": "Rejected",
            "cancelled": "Cancelled",
        }[self]

    @property
    def waiting_on(self) -> str | None:
        """Who the request is waiting on, in words a product team understands."""
        return {
            "pending": "a super admin's review",
            "approved": "the provisioner to start",
            "provisioning": "the provisioner",
            "partially_provisioned": "the provisioner on the second cluster",
            "failed": "a super admin to fix the cause and re-send it",
        }.get(self.value)


# A product has at most one request in these states; the partial unique index below enforces it.
IN_FLIGHT_STATUSES = (
    RequestStatus.APPROVED,
    RequestStatus.PROVISIONING,
    RequestStatus.PARTIALLY_PROVISIONED,
)
ACTIVE_STATUSES = (RequestStatus.PENDING, *IN_FLIGHT_STATUSES, RequestStatus.FAILED)
FINAL_STATUSES = (RequestStatus.PROVISIONED, RequestStatus.REJECTED, RequestStatus.CANCELLED)
# Statuses that exist only once an admin has decided.
DECIDED_STATUSES = (
    *IN_FLIGHT_STATUSES,
    RequestStatus.PROVISIONED,
    RequestStatus.FAILED,
    RequestStatus.REJECTED,
)


class Request(db.Model):
    __tablename__ = "requests"
    __table_args__ = (
        CheckConstraint(in_values("status", RequestStatus), name="status_known"),
        CheckConstraint(in_values("type", RequestType), name="type_known"),
        # A decision exists exactly when the status says one was made; only an edit may be
        # decided by the automatic-approval rules (no super admin).
        CheckConstraint(
            f"({in_values('status', DECIDED_STATUSES)} AND decided_at IS NOT NULL"
            " AND (decided_by_id IS NOT NULL OR type = 'edit'))"
            f" OR (NOT {in_values('status', DECIDED_STATUSES)} AND decided_by_id IS NULL"
            " AND decided_at IS NULL)",
            name="decision_matches_status",
        ),
        CheckConstraint(
            "status <> 'rejected'"
            " OR (decision_comment IS NOT NULL AND length(trim(decision_comment)) > 0)",
            name="rejection_has_comment",
        ),
        CheckConstraint(
            "decided_by_id IS NULL OR decided_by_id <> requested_by_id",
            name="no_self_decision",
        ),
        Index(
            "uq_requests_one_active_per_product",
            "product_id",
            unique=True,
            postgresql_where=text(in_values("status", ACTIVE_STATUSES)),
            sqlite_where=text(in_values("status", ACTIVE_STATUSES)),
        ),
        Index("ix_requests_status_created_at", "status", "created_at"),
        # The metrics' requests by kind and status: an index-only scan, not the whole table.
        Index("ix_requests_status_type", "status", "type"),
        # A product's requests, and their ids newest first from the index alone: a search that
        # finds thousands of products pages their requests without reading the table.
        Index("ix_requests_product_id_id", "product_id", "id"),
        # Separation of duties (what a super admin asked for lately), and what one person sent
        # within the last hour (REQUEST_SUBMISSIONS_PER_HOUR).
        Index("ix_requests_requested_by_id_created_at", "requested_by_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    type: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(30))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # The product before the request (None for a create), what was asked, what the admin decided.
    original_data: Mapped[dict | None] = mapped_column(JSON)
    requested_data: Mapped[dict] = mapped_column(JSON)
    decision_data: Mapped[dict | None] = mapped_column(JSON)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime | None]
    decision_comment: Mapped[str | None] = mapped_column(Text)
    # A quota increase: why the team needs it (asked when it goes to review), and what measured
    # usage said of it when it was asked (registry/usage/rules.py: figures, window, verdict).
    justification: Mapped[str | None] = mapped_column(Text)
    usage_evidence: Mapped[dict | None] = mapped_column(JSON)
    # A temporary increase: the day the quotas it raises go back (asked by the team, or set by
    # the super admin who granted it; requests/temporary.py).
    quota_ends_on: Mapped[date | None]
    # 1, then one more each time a super admin re-sends the request to the provisioner.
    attempt: Mapped[int] = mapped_column(default=1, server_default="1")
    # The one-time key of the form that made the request: the same form sent twice makes one.
    submission_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    # Optimistic lock: of two writers that read the same version, the second one fails.
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012

    product: Mapped[Product] = relationship()
    requested_by = relationship("User", foreign_keys=[requested_by_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])
    events: Mapped[list["RequestEvent"]] = relationship(
        back_populates="request",
        order_by="RequestEvent.id",
        cascade="all, delete-orphan",
    )

    @property
    def status_enum(self) -> RequestStatus:
        return RequestStatus(self.status)

    @property
    def status_label(self) -> str:
        return self.status_enum.label

    @property
    def is_active(self) -> bool:
        return self.status_enum in ACTIVE_STATUSES

    @property
    def is_pending(self) -> bool:
        return self.status == RequestStatus.PENDING

    @property
    def is_final(self) -> bool:
        return self.status_enum in FINAL_STATUSES

    @property
    def outcome_label(self) -> str:
        return outcome_label(self.type, self.status)

    @property
    def type_label(self) -> str:
        return RequestType(self.type).label

    @property
    def is_auto_approved(self) -> bool:
        """Decided by the automatic-approval rules, not by a super admin."""
        return self.decided_at is not None and self.decided_by_id is None

    @property
    def named_emails(self) -> set[str]:
        """Everyone the request names as a contact, in what was asked or granted."""
        return set(_contact_emails(self.requested_data, self.decision_data))

    @property
    def every_named_email(self) -> list[str]:
        """Every contact the request names or replaces, in order: what was live, asked, granted."""
        return _contact_emails(self.original_data, self.requested_data, self.decision_data)

    @property
    def granted_data(self) -> dict:
        """What the provisioner is (or was) asked to build: the decision, else the request."""
        return self.decision_data or self.requested_data


def _contact_emails(*records: dict | None) -> list[str]:
    """The contacts' emails in product records (``ProductData.as_dict`` shape), lower case."""
    return [
        contact["email"].lower()
        for data in records
        for contact in (data or {}).get("contacts", {}).values()
        if contact
    ]


class RequestEvent(db.Model):
    """One row per transition: the timeline and the history are read from here."""

    __tablename__ = "request_events"
    # The comments one person wrote within the last hour (REQUEST_SUBMISSIONS_PER_HOUR).
    __table_args__ = (
        Index(
            "ix_request_events_comments_by_actor",
            "actor_id",
            "created_at",
            postgresql_where=text("kind = 'comment'"),
            sqlite_where=text("kind = 'comment'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # None when the system acted (the provisioner, a timer).
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    from_status: Mapped[str | None] = mapped_column(String(30))
    to_status: Mapped[str] = mapped_column(String(30))
    note: Mapped[str | None] = mapped_column(Text)
    # For the provisioner's reports: which step, on which cluster, when it said it happened.
    step: Mapped[str | None] = mapped_column(String(40))
    cluster: Mapped[str | None] = mapped_column(String(20))
    reported_at: Mapped[datetime | None]
    # "transition" (from_status → to_status), or an entry that moves nothing: "comment" (a
    # question or an answer on the request), "dead_letter" (a report replayed or discarded),
    # "reminder" (super admins were reminded of a stuck request), "temporary" (a temporary
    # increase: the team warned of its end, or its end waiting for another request).
    kind: Mapped[str] = mapped_column(String(20), default="transition", server_default="transition")

    request: Mapped[Request] = relationship(back_populates="events")
    actor = relationship("User")

    @property
    def failed_step(self) -> str | None:
        """For a failure: the step that broke. The event keeps the furthest step reported before
        it, so the one that failed is the next (the first, when none was reported)."""

        if self.to_status != RequestStatus.FAILED or self.kind != "transition":
            return None
        if self.step is None:
            return STEPS[0]
        index = STEPS.index(self.step) if self.step in STEPS else -1
        return STEPS[index + 1] if 0 <= index < len(STEPS) - 1 else self.step

    @property
    def to_label(self) -> str:

        if self.kind == "reminder":
            return "Super admins reminded"
        if self.kind == "temporary":
            return "Temporary increase"
        if self.kind == "comment":
            return "Comment"
        if self.kind == "dead_letter":
            done = "discarded" if (self.note or "").startswith("Discarded") else "replayed"
            return f"Provisioner report {done}"
        if self.to_status == RequestStatus.APPROVED:
            if self.from_status is None:
                return "Submitted and approved automatically"
            if self.from_status != RequestStatus.PENDING:
                # A super admin sent it to the provisioner again; the note names the attempt.
                attempt = re.search(r"attempt (\d+)", self.note or "")
                return f"Re-sent (attempt {attempt.group(1)})" if attempt else "Re-sent"
        if self.to_status == RequestStatus.FAILED and self.kind == "transition":
            failed = self.failed_step
            return f"Failed at “{STEP_LABELS.get(failed, failed)}”" if failed else "Failed"
        if self.step:
            return STEP_LABELS.get(self.step, self.step)
        return RequestStatus(self.to_status).label


def outcome_label(kind: str, status: str) -> str:
    """The status, with a finished edit or delete said as what it did: every page that lists
    requests says the same ("Applied", not "Provisioned", for a change)."""
    if status == RequestStatus.PROVISIONED:
        return {"create": "Provisioned", "edit": "Applied", "delete": "Deleted"}[kind]
    return RequestStatus(status).label


class TemporaryOutcome(enum.StrEnum):
    REVERTED = "reverted"  # the registry asked for the earlier quotas back (revert_request_id)
    KEPT = "kept"  # a later request kept the quotas for good (reviewed)
    SUPERSEDED = "superseded"  # a later request moved the end or raised more: a new row holds it
    CHANGED = "changed"  # at the end, every raised quota had been changed since: nothing to do


class TemporaryIncrease(db.Model):
    """Quotas raised until a day. At most one is open per product (``outcome`` NULL): it holds
    every raised quota, with the value to go back to, and the request that set the end."""

    __tablename__ = "temporary_increases"
    __table_args__ = (
        CheckConstraint(
            f"outcome IS NULL OR {in_values('outcome', TemporaryOutcome)}", name="outcome_known"
        ),
        Index(
            "uq_temporary_increases_open_per_product",
            "product_id",
            unique=True,
            postgresql_where=text("outcome IS NULL"),
            sqlite_where=text("outcome IS NULL"),
        ),
        Index("ix_temporary_increases_outcome_ends_on", "outcome", "ends_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), unique=True)
    ends_on: Mapped[date]
    # "namespaces.<env>.<kind>" -> {"from": the option to go back to, "to": the raised option}
    restore: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    warned_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(20))
    revert_request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    # At the end, another request of the product was open: the revert waits for it.
    waiting_on_request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))

    product: Mapped[Product] = relationship()
    request: Mapped[Request] = relationship(foreign_keys=[request_id])
