"""The read side of products: who may see what, eager-loaded so pages run fixed query counts."""

from sqlalchemy import select, true, union
from sqlalchemy.orm import joinedload, selectinload

from ..extensions import db
from ..pagination import paginate
from .models import Product, ProductContact, ProductNamespace


def visible_to(user):
    """A where-clause: the products ``user`` may read.

    Super admins and support read everything; anyone else only products they created or where
    their email is one of the contacts.
    """
    return true() if user.reads_everything else belongs_to(user)


def belongs_to(user):
    """A where-clause: products ``user`` created or is a contact of (each through its index)."""
    return Product.id.in_(
        union(
            select(Product.id).where(Product.created_by_id == user.id),
            select(ProductContact.product_id).where(ProductContact.email == user.email),
        ).scalar_subquery()
    )


def product_options():
    return (
        selectinload(Product.contacts),
        selectinload(Product.namespaces).joinedload(ProductNamespace.product),
        # Many-to-one: joined into the product's own query, not a round trip each.
        joinedload(Product.ministry),
        joinedload(Product.cluster),
    )


def for_user(user, page: int = 1, per_page: int = 50):
    """The products a user created or is a contact of, newest first, a page at a time."""
    query = (
        select(Product)
        .where(belongs_to(user))
        .options(selectinload(Product.cluster))
        .order_by(Product.id.desc())
    )
    return paginate(query, page, per_page)


def get_visible(licence_plate: str, user) -> Product | None:
    """The product with this plate if ``user`` may read it, else None (the caller answers 404)."""
    query = (
        select(Product)
        .where(Product.licence_plate == licence_plate, visible_to(user))
        .options(*product_options())
    )
    return db.session.scalar(query)


def product_page(product: Product, requests: list) -> dict:
    """What the product page shows besides the product: its open request, the change that
    request would make to what is live, and whether the product was ever built.

    ``requests``: the product's requests, newest first.
    """
    from ..requests import changes
    from ..requests.models import RequestStatus, RequestType

    active = next((r for r in requests if r.is_active), None)
    pending_changes = []
    if active is not None and active.type == RequestType.EDIT:
        pending_changes = changes.diff(active.original_data, active.granted_data)
    built = any(
        r.type == RequestType.CREATE and r.status == RequestStatus.PROVISIONED for r in requests
    )
    last_create = next((r for r in requests if r.type == RequestType.CREATE), None)
    return {
        "requests": requests,
        "active": active,
        "pending_changes": pending_changes,
        "built": built,
        "last_create": last_create,
    }
