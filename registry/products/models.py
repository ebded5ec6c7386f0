import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from ..extensions import db, in_values
from ..reference.models import ENVIRONMENTS
from ..search import fold
from ..timeutil import utcnow


class ProductStatus(enum.StrEnum):
    """What a product is, in words its team understands: what is live and what is in flight.

    Always derived from the product's latest request (``requests.lifecycle.PRODUCT_STATES``),
    never set by hand.
    """

    REQUESTED = "requested"  # the first request waits for a super admin
    NOT_CREATED = "not_created"  # the first request was rejected or cancelled; it may be re-asked
    BEING_CREATED = "being_created"
    ACTIVE = "active"
    CHANGE_PENDING = "change_pending"
    CHANGE_APPLYING = "change_applying"
    DELETE_PENDING = "delete_pending"
    BEING_DELETED = "being_deleted"
    FAILED = "failed"  # a request of the product failed at the provisioner; a super admin re-sends
    DELETED = "deleted"  # read-only for ever; its licence plate is never reused

    @property
    def label(self) -> str:
        return {
            "requested": "Requested",
            "not_created": "Not created",
            "being_created": "Being created",
            "active": "Active",
            "change_pending": "Change pending",
            "change_applying": "Change being applied",
            "delete_pending": "Deletion pending",
            "being_deleted": "Being deleted",
            "failed": "Failed",
            "deleted": "Deleted",
        }[self]


class ContactRole(enum.StrEnum):
    OWNER = "owner"
    PRIMARY_LEAD = "primary_lead"
    SECONDARY_LEAD = "secondary_lead"

    @property
    def label(self) -> str:
        return {
            "owner": "Product owner",
            "primary_lead": "Primary technical lead",
            "secondary_lead": "Secondary technical lead",
        }[self]


class Product(db.Model):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint(in_values("status", ProductStatus), name="status_known"),
        CheckConstraint("length(licence_plate) = 6", name="licence_plate_length"),
        # Search by any part of the name: a trigram index on PostgreSQL (a plain one elsewhere).
        Index(
            "ix_products_search_name_trgm",
            "search_name",
            postgresql_using="gin",
            postgresql_ops={"search_name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    licence_plate: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(String(40))
    # The name folded for search (lower case, no accents): set with the name, never by hand.
    search_name: Mapped[str] = mapped_column(String(80), default="", server_default="")
    description: Mapped[str] = mapped_column(String(512))
    # Indexed: All requests filters by ministry (without it, a scan of every product).
    ministry_code: Mapped[str] = mapped_column(ForeignKey("ministries.code"), index=True)
    cluster_name: Mapped[str] = mapped_column(ForeignKey("clusters.name"))
    status: Mapped[str] = mapped_column(String(20), default=ProductStatus.REQUESTED.value)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, server_default=func.now())

    ministry = relationship("Ministry")
    cluster = relationship("Cluster")
    created_by = relationship("User")
    contacts: Mapped[list["ProductContact"]] = relationship(
        back_populates="product",
        cascade="all, delete-orphan",
        order_by="ProductContact.role",
    )
    namespaces: Mapped[list["ProductNamespace"]] = relationship(
        back_populates="product", cascade="all, delete-orphan"
    )

    @validates("name")
    def _fold_name(self, key, name):
        self.search_name = fold(name or "")
        return name

    @property
    def status_label(self) -> str:
        return ProductStatus(self.status).label

    def contact(self, role: ContactRole) -> "ProductContact | None":
        return next((c for c in self.contacts if c.role == role), None)

    @property
    def contact_emails(self) -> list[str]:
        return [c.email for c in self.contacts]

    @property
    def sorted_namespaces(self) -> list["ProductNamespace"]:
        return sorted(self.namespaces, key=lambda n: ENVIRONMENTS.index(n.environment))

    @property
    def live_quotas(self) -> dict[str, dict[str, str]]:
        """{environment: {kind: option}} of its namespaces."""
        return {ns.environment: ns.quotas() for ns in self.namespaces}


class ProductContact(db.Model):
    __tablename__ = "product_contacts"
    __table_args__ = (
        UniqueConstraint("product_id", "role"),
        CheckConstraint(in_values("role", ContactRole), name="role_known"),
        CheckConstraint("email = lower(email)", name="email_lowercase"),
        Index(
            "ix_product_contacts_email_trgm",
            "email",
            postgresql_using="gin",
            postgresql_ops={"email": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    first_name: Mapped[str] = mapped_column(String(60))
    last_name: Mapped[str] = mapped_column(String(60))
    email: Mapped[str] = mapped_column(String(254), index=True)
    # The account this contact is, resolved once from a verified email (when the contact is
    # written, or when the account is made): access follows this, never the typed email.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)

    product: Mapped[Product] = relationship(back_populates="contacts")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def role_label(self) -> str:
        return ContactRole(self.role).label

    def as_dict(self) -> dict:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
        }


class ProductContactHistory(db.Model):
    """Who held each contact role of a product, and when: one row per holder, closed
    (``ended_at``) when the role passes to someone else or is removed. Separation of duties
    reads it: a past contact may not decide the product's requests for a while."""

    __tablename__ = "product_contact_history"
    __table_args__ = (CheckConstraint(in_values("role", ContactRole), name="role_known"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    email: Mapped[str] = mapped_column(String(254), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[datetime | None]


class ProductNamespace(db.Model):
    __tablename__ = "product_namespaces"
    __table_args__ = (
        UniqueConstraint("product_id", "environment"),
        CheckConstraint(in_values("environment", ENVIRONMENTS), name="environment_known"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    environment: Mapped[str] = mapped_column(String(10))
    cpu: Mapped[str] = mapped_column(ForeignKey("quota_options.name"))
    memory: Mapped[str] = mapped_column(ForeignKey("quota_options.name"))
    storage: Mapped[str] = mapped_column(ForeignKey("quota_options.name"))
    snapshot: Mapped[str] = mapped_column(ForeignKey("quota_options.name"))

    product: Mapped[Product] = relationship(back_populates="namespaces")

    @property
    def name(self) -> str:
        return f"{self.product.licence_plate}-{self.environment}"

    def quotas(self) -> dict[str, str]:
        return {
            "cpu": self.cpu,
            "memory": self.memory,
            "storage": self.storage,
            "snapshot": self.snapshot,
        }
