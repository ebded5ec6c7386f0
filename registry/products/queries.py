"""The read side of products: who may see what, eager-loaded so pages run fixed query counts."""

from sqlalchemy import func, or_, select, true, union
from sqlalchemy.orm import joinedload, selectinload

from ..auth.models import User
from ..extensions import db
from ..pagination import Page
from ..search import fold
from .models import Product, ProductContact, ProductStatus


def visible_to(user):
    """A where-clause: the products ``user`` may read.

    Super admins and support read everything; anyone else only products they created or whose
    contacts are their account (resolved from a verified email, never matched by a typed one).
    """
    return true() if user.reads_everything else belongs_to(user)


def belongs_to(user):
    """A where-clause: products ``user`` created or is a contact of (each through its index)."""
    return Product.id.in_(_ids_of(user).scalar_subquery())


def _ids_of(user):
    """The ids of the products ``user`` created or is a contact of."""
    return union(
        select(Product.id.label("id")).where(Product.created_by_id == user.id),
        select(ProductContact.product_id).where(ProductContact.user_id == user.id),
    )


def product_options():
    return (
        selectinload(Product.contacts),
        selectinload(Product.namespaces),
        # Many-to-one: joined into the product's own query, not a round trip each.
        joinedload(Product.ministry),
        joinedload(Product.cluster),
    )


def for_user(user, page: int = 1, per_page: int = 50) -> Page:
    """The products a user created or is a contact of, newest first, a page at a time.

    Their ids first (two index scans, a few hundred ids at most), which give the count and the
    page; then that page's products. One statement for both let the planner walk every product
    backwards by id, betting the user's few would turn up early (54 ms at 100,000 products)."""
    mine = _ids_of(user).subquery()
    ids = list(db.session.scalars(select(mine.c.id).order_by(mine.c.id.desc())))
    page = max(1, page)
    page_ids = ids[(page - 1) * per_page : page * per_page]
    items = []
    if page_ids:
        query = (
            select(Product)
            .where(Product.id.in_(page_ids))
            .options(selectinload(Product.cluster))
            .order_by(Product.id.desc())
        )
        items = list(db.session.scalars(query))
    return Page(items, page, per_page, len(ids), False)


def get_visible(licence_plate: str, user) -> Product | None:
    """The product with this plate if ``user`` may read it, else None (the caller answers 404)."""
    query = (
        select(Product)
        .where(Product.licence_plate == licence_plate, visible_to(user))
        .options(*product_options())
    )
    return db.session.scalar(query)


def same_name(name: str, user, exclude_plate: str | None = None) -> dict | None:
    """Another product (not deleted) already called ``name``, case and accents folded away:
    ``{"product": <the product if user may see it, else None>}``, or None if there is none.

    A warning for the team, never a refusal: two products may share a name."""

    folded = fold((name or "").strip())
    if not folded:
        return None
    query = select(Product).where(
        Product.search_name == folded, Product.status != ProductStatus.DELETED.value
    )
    if exclude_plate:
        query = query.where(Product.licence_plate != exclude_plate)
    others = list(db.session.scalars(query.order_by(Product.id).limit(20)))
    if not others:
        return None
    visible = None
    if user.reads_everything:
        visible = others[0]
    else:
        ids = [p.id for p in others]
        visible = db.session.scalars(
            select(Product).where(Product.id.in_(ids), belongs_to(user)).order_by(Product.id)
        ).first()
    return {"product": visible}


PEOPLE_MIN_CHARS = 3
PEOPLE_MAX = 10


def people(text: str, user, limit: int = PEOPLE_MAX) -> list[dict]:
    """The people ``user`` may know whose first or last name, or email, starts with ``text``:
    for a product team member, the contacts of their own products; for the staff, every
    contact and every active account. One per email, as ``{"first_name", "last_name",
    "email"}``, at most ``limit``. Only names and emails; never a match inside an address, so
    a few letters do not list a whole directory."""

    text = (text or "").strip().lower()
    if len(text) < PEOPLE_MIN_CHARS:
        return []
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    starts = f"{escaped}%"
    found: dict[str, dict] = {}
    contacts = (
        select(ProductContact.first_name, ProductContact.last_name, ProductContact.email)
        .where(
            or_(
                func.lower(ProductContact.first_name).like(starts, escape="\\"),
                func.lower(ProductContact.last_name).like(starts, escape="\\"),
                ProductContact.email.like(starts, escape="\\"),
            )
        )
        .distinct()
        .order_by(ProductContact.email)
        .limit(limit * 3)
    )
    if not user.reads_everything:
        contacts = contacts.where(ProductContact.product_id.in_(_ids_of(user).scalar_subquery()))
    for first, last, email in db.session.execute(contacts):
        found.setdefault(email.lower(), {"first_name": first, "last_name": last, "email": email})
    if user.reads_everything:
        users = db.session.execute(
            select(User.name, User.email)
            .where(
                User.active.is_(True),
                or_(
                    func.lower(User.name).like(starts, escape="\\"),
                    func.lower(User.name).like(f"% {escaped}%", escape="\\"),
                    User.email.like(starts, escape="\\"),
                ),
            )
            .order_by(User.email)
            .limit(limit * 3)
        )
        for name, email in users:
            first, _, last = (name or "").strip().partition(" ")
            found.setdefault(
                email.lower(), {"first_name": first, "last_name": last, "email": email}
            )
    ordered = sorted(
        found.values(), key=lambda p: (p["first_name"].lower(), p["last_name"].lower())
    )
    return ordered[:limit]
