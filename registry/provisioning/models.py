"""What travels between the registry and the provisioner, and what we keep of it."""

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..contract import STEP_LABELS, STEPS
from ..extensions import db, in_values
from ..timeutil import utcnow


class ProvisioningTarget(db.Model):
    """One cluster a request is provisioned on (gold also has golddr), and how far it has got."""

    __tablename__ = "provisioning_targets"
    __table_args__ = (
        UniqueConstraint("request_id", "cluster"),
        CheckConstraint(
            "step IS NULL OR " + in_values("step", STEPS),
            name="step_known",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("requests.id"), index=True)
    cluster: Mapped[str] = mapped_column(ForeignKey("clusters.name"))
    workflow: Mapped[str] = mapped_column(String(80))
    attempt: Mapped[int] = mapped_column(default=1)
    # The furthest step reported in this attempt; None until the first report.
    step: Mapped[str | None] = mapped_column(String(40))
    failed_reason: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    request = relationship("Request", backref="targets")

    @property
    def step_index(self) -> int:
        return STEPS.index(self.step) if self.step else -1

    @property
    def is_provisioned(self) -> bool:
        return self.step == "provisioned"

    @property
    def step_label(self) -> str:
        """Where this cluster stands, for people: "Failed at “Manifests committed”" when the
        step after the furthest one broke, else the furthest step's name."""

        if self.failed_reason:
            failed = STEPS[min(self.step_index + 1, len(STEPS) - 1)]
            return f"Failed at “{STEP_LABELS[failed]}”"
        return STEP_LABELS[self.step] if self.step else "Not started"


class DeadLetter(db.Model):
    """A status report that could not be applied, kept with the reason instead of redelivered."""

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    received_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    source: Mapped[str] = mapped_column(String(10))  # "nats" or "http"
    subject: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    stream_sequence: Mapped[int | None]
    delivered: Mapped[int | None]
    # The request the report names, when it names one of ours (its timeline shows what is done).
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"), index=True)
    # What a super admin did with it: "replayed" or "discarded", by whom, when, and why.
    resolution: Mapped[str | None] = mapped_column(String(20))
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution_note: Mapped[str | None] = mapped_column(Text)

    request = relationship("Request")
    resolved_by = relationship("User")
