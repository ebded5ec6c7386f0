import enum
from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db, in_values
from ..products.models import Product
from ..timeutil import utcnow


class OfferState(enum.StrEnum):
    OFFERED = "offered"
    APPLIED = "applied"  # the team accepted: a decrease request was made (request_id)
    DISMISSED = "dismissed"  # the team said no: silenced until silenced_until
    WITHDRAWN = "withdrawn"  # a later check found the quotas or the use changed


class SavingOffer(db.Model):
    """Quotas a product's namespaces do not use (their peak stays under a share of the quota),
    offered back to the team as a pre-filled decrease. At most one open offer per product."""

    __tablename__ = "saving_offers"
    __table_args__ = (
        CheckConstraint(in_values("state", OfferState), name="state_known"),
        Index(
            "uq_saving_offers_open_per_product",
            "product_id",
            unique=True,
            postgresql_where=text("state = 'offered'"),
            sqlite_where=text("state = 'offered'"),
        ),
        Index("ix_saving_offers_product_id_silenced_until", "product_id", "silenced_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())
    # "namespaces.<env>.<kind>" -> {"from", "to": options, "peak": measured, "quota": requested}
    proposal: Mapped[dict] = mapped_column(JSON)
    monthly_saving: Mapped[float]
    window_days: Mapped[int]
    state: Mapped[str] = mapped_column(String(20), default=OfferState.OFFERED.value)
    answered_at: Mapped[datetime | None]
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    request_id: Mapped[int | None] = mapped_column(ForeignKey("requests.id"))
    silenced_until: Mapped[datetime | None]

    product: Mapped[Product] = relationship()
    answered_by = relationship("User")


class ScheduleRun(db.Model):
    """When a periodic check last ran: the process that moves ``last_run_at`` on runs it, so
    of any number of processes exactly one does each week's work."""

    __tablename__ = "schedule_runs"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    last_run_at: Mapped[datetime]
