"""Products: creating them, and writing a decided request's data onto them. Every rule that changes
a product lives here; services flush, never commit."""

from dataclasses import dataclass, field

from sqlalchemy import exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..auth.models import User
from ..extensions import db
from ..reference.models import ENVIRONMENTS
from ..search import fold
from ..timeutil import utcnow
from . import plates
from .models import (
    ContactRole,
    Product,
    ProductContact,
    ProductContactHistory,
    ProductNamespace,
    ProductStatus,
)

PLATE_ATTEMPTS = 20


class PlateExhausted(RuntimeError):
    pass


@dataclass
class ContactData:
    first_name: str
    last_name: str
    email: str

    def as_dict(self) -> dict:
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "email": self.email,
        }


@dataclass
class ProductData:
    """What a product team asks for; validated by the form before it gets here."""

    name: str
    description: str
    ministry_code: str
    cluster_name: str
    owner: ContactData
    primary_lead: ContactData
    secondary_lead: ContactData | None
    quotas: dict[str, dict[str, str]] = field(default_factory=dict)  # environment -> kind -> option

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "ministry": self.ministry_code,
            "cluster": self.cluster_name,
            "contacts": {
                ContactRole.OWNER.value: self.owner.as_dict(),
                ContactRole.PRIMARY_LEAD.value: self.primary_lead.as_dict(),
                ContactRole.SECONDARY_LEAD.value: (
                    self.secondary_lead.as_dict() if self.secondary_lead else None
                ),
            },
            "namespaces": {env: dict(self.quotas[env]) for env in ENVIRONMENTS},
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ProductData":
        """The inverse of :meth:`as_dict`: a request's recorded data as a ``ProductData``."""
        contacts = data["contacts"]
        secondary = contacts.get(ContactRole.SECONDARY_LEAD.value)
        return cls(
            name=data["name"],
            description=data["description"],
            ministry_code=data["ministry"],
            cluster_name=data["cluster"],
            owner=ContactData(**contacts[ContactRole.OWNER.value]),
            primary_lead=ContactData(**contacts[ContactRole.PRIMARY_LEAD.value]),
            secondary_lead=ContactData(**secondary) if secondary else None,
            quotas={env: dict(data["namespaces"][env]) for env in ENVIRONMENTS},
        )


def live_data(product: Product) -> dict:
    """What the product is now, in the shape a request records (``ProductData.as_dict``)."""
    contacts = {role.value: None for role in ContactRole}
    for contact in product.contacts:
        contacts[contact.role] = contact.as_dict()
    return {
        "name": product.name,
        "description": product.description,
        "ministry": product.ministry_code,
        "cluster": product.cluster_name,
        "contacts": contacts,
        "namespaces": {ns.environment: ns.quotas() for ns in product.sorted_namespaces},
    }


def _plate_taken(plate: str) -> bool:
    return db.session.scalar(select(exists().where(Product.licence_plate == plate)))


def create_product(data: ProductData, created_by, generate_plate=plates.random_plate) -> Product:
    """Create a product with a new licence plate, its contacts and its four namespaces.

    A plate is never reused: the unique constraint covers every product ever made, deleted ones
    included. A plate taken between the check and the insert (another request at the same
    instant) makes the insert do nothing (``ON CONFLICT DO NOTHING``) and another plate is
    drawn; no savepoint is needed, so the caller's transaction stays whole on every backend.
    """
    for _ in range(PLATE_ATTEMPTS):
        plate = generate_plate()
        if not plates.is_plate(plate) or _plate_taken(plate):
            continue
        product_id = _insert_unless_plate_taken(data, plate, created_by)
        if product_id is None:
            continue
        product = db.session.get(Product, product_id)
        _add_contacts_and_namespaces(product, data)
        db.session.flush()
        return product
    raise PlateExhausted(f"No free licence plate after {PLATE_ATTEMPTS} attempts.")


def _insert_unless_plate_taken(data: ProductData, plate: str, created_by) -> int | None:
    dialect = db.session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    statement = (
        insert(Product)
        .values(
            licence_plate=plate,
            name=data.name,
            search_name=fold(data.name),
            description=data.description,
            ministry_code=data.ministry_code,
            cluster_name=data.cluster_name,
            created_by_id=created_by.id,
            status=ProductStatus.REQUESTED.value,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[Product.licence_plate])
        .returning(Product.id)
    )
    return db.session.scalar(statement)


def _add_contacts_and_namespaces(product: Product, data: ProductData) -> None:
    _set_contacts(product, data)
    for env in ENVIRONMENTS:
        product.namespaces.append(ProductNamespace(environment=env, **data.quotas[env]))


def _set_contacts(product: Product, data: ProductData) -> None:
    """Make the product's contacts those of ``data``: changed in place, added or removed by role.

    Each contact is resolved to the account with its (verified) email, if there is one; a role
    that passes to another person, or is removed, closes its holder's row in the history and
    opens the next one's."""
    current = {c.role: c for c in product.contacts}
    wanted = {
        ContactRole.OWNER.value: data.owner,
        ContactRole.PRIMARY_LEAD.value: data.primary_lead,
        ContactRole.SECONDARY_LEAD.value: data.secondary_lead,
    }
    emails = {c.email.lower() for c in wanted.values() if c is not None}
    accounts = _accounts_by_email(emails)
    now = utcnow()
    for role, contact in wanted.items():
        row = current.get(role)
        email = contact.email.lower() if contact is not None else None
        if row is not None and row.email != email:
            _end_history(product.id, role, now)
        if contact is None:
            if row is not None:
                product.contacts.remove(row)
            continue
        if row is None or row.email != email:
            db.session.add(
                ProductContactHistory(
                    product_id=product.id,
                    role=role,
                    email=email,
                    user_id=accounts.get(email),
                    started_at=now,
                )
            )
        if row is None:
            row = ProductContact(role=role)
            product.contacts.append(row)
        if row.email != email:
            row.email, row.user_id = email, accounts.get(email)
        row.first_name, row.last_name = contact.first_name, contact.last_name


def _accounts_by_email(emails: set[str]) -> dict[str, int]:
    """The ids of the accounts with these emails. Every account's email is verified (made by an
    administrator, or from the identity provider's verified claim), so the match is a person."""

    if not emails:
        return {}
    return dict(db.session.execute(select(User.email, User.id).where(User.email.in_(emails))).all())


def _end_history(product_id: int, role: str, now) -> None:
    db.session.execute(
        update(ProductContactHistory)
        .where(
            ProductContactHistory.product_id == product_id,
            ProductContactHistory.role == role,
            ProductContactHistory.ended_at.is_(None),
        )
        .values(ended_at=now)
    )


def link_contacts(user) -> int:
    """Resolve the contacts (live and past) that name ``user``'s email and no account yet to
    ``user``: called once their email is verified (the account is made, or its email changes).
    How many live contacts were linked."""
    linked = db.session.execute(
        update(ProductContact)
        .where(ProductContact.email == user.email, ProductContact.user_id.is_(None))
        .values(user_id=user.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.execute(
        update(ProductContactHistory)
        .where(ProductContactHistory.email == user.email, ProductContactHistory.user_id.is_(None))
        .values(user_id=user.id)
        .execution_options(synchronize_session=False)
    )
    return linked


def apply_change(product: Product, data: dict) -> None:
    """Write a provisioned edit's decided data onto the product: what is live from now on.

    The cluster never changes and the plate is the product's for ever.
    """
    _write(product, ProductData.from_dict(data))


def reopen(product: Product, data: ProductData) -> None:
    """A product that was never created is asked for again: it takes the new request's data.

    Its plate stays; its cluster may change, since nothing was built yet.
    """
    product.cluster_name = data.cluster_name
    _write(product, data)


def _write(product: Product, data: ProductData) -> None:
    product.name, product.description = data.name, data.description
    product.ministry_code = data.ministry_code
    _set_contacts(product, data)
    for ns in product.namespaces:
        for kind, option in data.quotas[ns.environment].items():
            setattr(ns, kind, option)
