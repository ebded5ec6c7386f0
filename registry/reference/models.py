"""Reference data: clusters, ministries, quota options. Data, not code: governments reorganise."""

from sqlalchemy import JSON, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db, in_values
from .data import CLUSTER_DESCRIPTIONS

QUOTA_KINDS = ("cpu", "memory", "storage", "snapshot")
ENVIRONMENTS = ("tools", "dev", "test", "prod")


class Cluster(db.Model):
    __tablename__ = "clusters"

    name: Mapped[str] = mapped_column(String(20), primary_key=True)
    # The cluster_id of the provisioning message.
    number: Mapped[int] = mapped_column(unique=True)
    display_name: Mapped[str] = mapped_column(String(80))
    # Lab clusters are for the platform team's experiments: only admins may place products there.
    is_lab: Mapped[bool] = mapped_column(default=False)
    is_default: Mapped[bool] = mapped_column(default=False)
    # A product here also gets an identical set on this cluster (gold -> golddr).
    paired_with: Mapped[str | None] = mapped_column(String(20))
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    @property
    def description(self) -> str:
        """What the cluster is, in plain words (``data.CLUSTER_DESCRIPTIONS``)."""

        return CLUSTER_DESCRIPTIONS.get(self.name, "")

    @property
    def console_url(self) -> str:
        return f"https://console.apps.{self.name}.devops.gov.bc.ca"


class Ministry(db.Model):
    __tablename__ = "ministries"
    __table_args__ = (CheckConstraint("alliance IN ('JAG', 'none')", name="alliance_known"),)

    code: Mapped[str] = mapped_column(String(10), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    alliance: Mapped[str] = mapped_column(String(10), default="none")
    active: Mapped[bool] = mapped_column(default=True)


class QuotaOption(db.Model):
    __tablename__ = "quota_options"
    __table_args__ = (
        CheckConstraint(
            in_values("kind", QUOTA_KINDS),
            name="kind_known",
        ),
    )

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))
    is_default: Mapped[bool] = mapped_column(default=False)
    sort_order: Mapped[int] = mapped_column(default=0)
    # The numbers behind the option, as the provisioning message carries them.
    quotas: Mapped[dict] = mapped_column(JSON, default=dict)

    @property
    def label(self) -> str:
        q = {k: f"{v:g}" if isinstance(v, float) else v for k, v in self.quotas.items()}
        if self.kind == "cpu":
            cores = "core" if q["requests"] in (1, "1") else "cores"
            return f"{q['requests']} {cores} requested, {q['limits']} limit"
        if self.kind == "memory":
            return f"{q['requests']} GiB requested, {q['limits']} GiB limit"
        if self.kind == "storage":
            return f"{q['block']} GiB block, file and capacity; {q['backup']} GiB backup"
        return f"{q['count']} volume snapshots"
