"""The read side of requests: the queue, the history, one request with its timeline."""

from dataclasses import dataclass, fields
from datetime import datetime

from sqlalchemy import ARRAY, Integer, and_, any_, cast, func, or_, select, union
from sqlalchemy.orm import aliased, contains_eager, defer, joinedload, selectinload

from ..auth.models import User
from ..extensions import db
from ..pagination import Page, paginate
from ..products import queries as product_queries
from ..products.models import Product, ProductContact
from ..search import fold, parse_identifier
from .models import (
    ACTIVE_STATUSES,
    Request,
    RequestEvent,
    RequestStatus,
    RequestType,
    outcome_label,
)


def request_options():
    return (
        # Many-to-one: joined into the request's own query, not a round trip each.
        joinedload(Request.product).options(*product_queries.product_options()),
        joinedload(Request.requested_by),
        joinedload(Request.decided_by),
    )


def get_visible(request_id: int, user) -> Request | None:
    """One request with its product and timeline, if ``user`` may read it: the product's
    people, the requester, the staff, and anyone the request names as a new contact (they are
    emailed about it before the change makes them the product's)."""
    options = (
        *request_options(),
        selectinload(Request.events).joinedload(RequestEvent.actor),
        selectinload(Request.targets),
    )
    query = (
        select(Request)
        .join(Request.product)
        .where(
            Request.id == request_id,
            or_(product_queries.visible_to(user), Request.requested_by_id == user.id),
        )
        .options(*options)
    )
    request = db.session.scalar(query)
    if request is None:
        named = db.session.scalar(select(Request).where(Request.id == request_id).options(*options))
        if named is not None and user.email in named.named_emails:
            return named
    return request


# For lists that show none of what was asked: the JSON records stay in the database (decoding
# them was a fifth of a product page's time). A deferred record is read when first touched.
LEAVE_RECORDS = (
    defer(Request.original_data),
    defer(Request.requested_data),
    defer(Request.decision_data),
)


def for_products(product_ids: list[int]) -> dict[int, list[Request]]:
    """Requests of these products, newest first, grouped by product id."""
    grouped: dict[int, list[Request]] = {pid: [] for pid in product_ids}
    if not product_ids:
        return grouped
    query = (
        select(Request)
        .where(Request.product_id.in_(product_ids))
        .options(
            joinedload(Request.requested_by),
            joinedload(Request.decided_by),
            *LEAVE_RECORDS,
        )
        .order_by(Request.created_at.desc(), Request.id.desc())
    )
    for req in db.session.scalars(query):
        grouped[req.product_id].append(req)
    return grouped


def last_create(product_id: int) -> Request | None:
    """The product's latest create request: what "Request again" starts from."""
    return db.session.scalar(
        select(Request)
        .where(Request.product_id == product_id, Request.type == RequestType.CREATE.value)
        .order_by(Request.created_at.desc(), Request.id.desc())
        .limit(1)
    )


def active_for_products(product_ids: list[int]) -> dict[int, Request]:
    if not product_ids:
        return {}
    query = select(Request).where(
        Request.product_id.in_(product_ids),
        Request.status.in_([s.value for s in ACTIVE_STATUSES]),
    )
    return {r.product_id: r for r in db.session.scalars(query)}


def pending_queue(page: int, per_page: int) -> Page:
    """Pending requests, oldest first: the super admins' queue. Four statements whatever the
    page: the count; the page's requests with their products, clusters and requesters joined
    in; the products' contacts; the requests' events (an edit shows its submission's note)."""
    page = max(1, page)
    query = (
        select(Request)
        .where(Request.status == RequestStatus.PENDING.value)
        .options(
            joinedload(Request.product).options(
                joinedload(Product.cluster), selectinload(Product.contacts)
            ),
            joinedload(Request.requested_by),
            selectinload(Request.events),
        )
        .order_by(Request.created_at, Request.id)
        .limit(per_page)
        .offset((page - 1) * per_page)
    )
    return Page(list(db.session.scalars(query)), page, per_page, pending_count(), False)


def decided_among(ids: list[int]) -> list[Request]:
    """Of these requests, the ones no longer pending, with who decided them."""
    if not ids:
        return []
    return list(
        db.session.scalars(
            select(Request)
            .where(Request.id.in_(ids), Request.status != RequestStatus.PENDING.value)
            .options(selectinload(Request.product), selectinload(Request.decided_by))
            .order_by(Request.id)
        )
    )


def queue_page_of(req: Request, per_page: int) -> int:
    """The review queue's page that shows ``req`` (pending, oldest first)."""
    ahead = db.session.scalar(
        select(func.count())
        .select_from(Request)
        .where(
            Request.status == RequestStatus.PENDING.value,
            or_(
                Request.created_at < req.created_at,
                and_(Request.created_at == req.created_at, Request.id < req.id),
            ),
        )
    )
    return ahead // per_page + 1


def pending_count() -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(Request)
        .where(Request.status == RequestStatus.PENDING.value)
    )


@dataclass
class HistoryFilters:
    status: str = ""
    type: str = ""
    cluster: str = ""
    ministry: str = ""
    q: str = ""

    def as_args(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v}


# All requests counts no further than this: past it the page says "more than".
HISTORY_COUNT_LIMIT = 1_000


def _history_where(query, filters: HistoryFilters, postgres: bool, joined: bool = False):
    """``query`` (over requests) narrowed by ``filters``: the page and the export share it.
    ``joined``: the query already joins the product."""
    if (filters.cluster or filters.ministry) and not joined:
        query = query.join(Request.product)
    if filters.status:
        query = query.where(Request.status == filters.status)
    if filters.type:
        query = query.where(Request.type == filters.type)
    if filters.cluster:
        query = query.where(Product.cluster_name == filters.cluster)
    if filters.ministry:
        query = query.where(Product.ministry_code == filters.ministry)
    if not filters.q:
        return query
    term = filters.q.strip().lower()
    named = parse_identifier(term)
    if named is not None:
        # A namespace or workflow name: its plate through the plate's unique index, and for a
        # workflow its request by primary key. No pattern is scanned for.
        product = select(Product.id).where(Product.licence_plate == named.licence_plate)
        query = query.where(Request.product_id == product.scalar_subquery())
        if named.request_id is not None:
            query = query.where(Request.id == named.request_id)
        return query
    # One set of matching products, each part through its own index (the plate's unique
    # one, trigram ones for name and email on PostgreSQL), then their requests.
    matching = union(
        select(Product.id).where(Product.licence_plate == term),
        select(Product.id).where(
            Product.search_name.like(f"%{_escape_like(fold(term))}%", escape="\\")
        ),
        select(ProductContact.product_id).where(*_email_contains(term)),
    )
    matched = select(matching.subquery().c[0])
    if postgres:
        # As an array computed once (a CTE the count and the page share): PostgreSQL then
        # walks requests newest first through the index and stops at the page, where IN
        # made it join every request.
        products = select(func.array(matched.scalar_subquery()).label("ids")).cte("matched")
        shared = cast(select(products.c.ids).scalar_subquery(), ARRAY(Integer))
        return query.where(Request.product_id == any_(shared))
    return query.where(Request.product_id.in_(matched))


@dataclass(frozen=True, slots=True)
class RequestLine:
    """One request as All requests and its export show it: plain values read in one statement
    with its product and people, no ORM objects (building those was a third of the page's
    query time)."""

    id: int
    created_at: datetime
    kind: str
    status: str
    product: str
    licence_plate: str
    ministry: str
    cluster: str
    requested_by: str
    decided_by: str | None
    decided_at: datetime | None
    decision_comment: str | None
    updated_at: datetime

    @property
    def type_label(self) -> str:
        return RequestType(self.kind).label

    @property
    def outcome_label(self) -> str:
        return outcome_label(self.kind, self.status)


# The All requests export: its columns, in order (a RequestLine's fields), and how many rows
# it reads at a time.
EXPORT_COLUMNS = tuple(field.name for field in fields(RequestLine))
EXPORT_CHUNK = 500


def _lines():
    """The select of RequestLine's columns, requests joined to their products and people."""

    requester, decider = aliased(User), aliased(User)
    return (
        select(
            Request.id,
            Request.created_at,
            Request.type.label("kind"),
            Request.status,
            Product.name.label("product"),
            Product.licence_plate,
            Product.ministry_code.label("ministry"),
            Product.cluster_name.label("cluster"),
            requester.email.label("requested_by"),
            decider.email.label("decided_by"),
            Request.decided_at,
            Request.decision_comment,
            Request.updated_at,
        )
        .join(Product, Product.id == Request.product_id)
        .join(requester, requester.id == Request.requested_by_id)
        .outerjoin(decider, decider.id == Request.decided_by_id)
    )


def history(filters: HistoryFilters, page: int, per_page: int) -> Page:
    """Every request, newest first, filtered; searched by plate, namespace or workflow name,
    product name (accents and case folded) or contact email. The page's items are
    RequestLines."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    ids = _history_where(select(Request.id), filters, postgres)
    # Ids grow with time: the primary key orders newest first without a sort. The count (up to
    # its limit) and the page's ids come from one statement, the page cut from the ids alone
    # (an index walk); then only its rows are read with their products and people.
    page = max(1, page)
    counted = select(func.count()).select_from(ids.limit(HISTORY_COUNT_LIMIT + 1).subquery())
    window = ids.order_by(Request.id.desc()).limit(per_page).offset((page - 1) * per_page)
    if postgres:
        total, page_ids = db.session.execute(
            select(counted.scalar_subquery(), func.array(window.scalar_subquery()))
        ).one()
    else:
        total, page_ids = db.session.scalar(counted), list(db.session.scalars(window))
    items = []
    if page_ids:
        query = _lines().where(Request.id.in_(page_ids)).order_by(Request.id.desc())
        items = [RequestLine(**row._mapping) for row in db.session.execute(query)]
    capped = total > HISTORY_COUNT_LIMIT
    return Page(items, page, per_page, HISTORY_COUNT_LIMIT if capped else total, capped)


def history_rows(filters: HistoryFilters):
    """Every request the filters find, newest first, as RequestLines: read ``EXPORT_CHUNK`` at
    a time by id (keyset, each chunk an index walk from where the last stopped), never objects
    the session keeps, so the export holds one chunk in memory however many requests there
    are."""
    postgres = db.session.get_bind().dialect.name == "postgresql"
    base = _history_where(_lines(), filters, postgres, joined=True)
    before = None
    while True:
        query = base if before is None else base.where(Request.id < before)
        chunk = db.session.execute(query.order_by(Request.id.desc()).limit(EXPORT_CHUNK)).all()
        yield from (RequestLine(**row._mapping) for row in chunk)
        if len(chunk) < EXPORT_CHUNK:
            return
        before = chunk[-1].id


# The product page's history shows this many entries a page.
PRODUCT_HISTORY_PAGE = 25


def product_history(product_id: int, page: int, per_page: int = PRODUCT_HISTORY_PAGE):
    """Every event of every request of a product in one timeline, newest first, a page at a
    time: each entry with its request (kind, id) and who acted. Two statements whatever the
    length: the count, and the page of events with their requests and actors joined."""
    query = (
        select(RequestEvent)
        .join(RequestEvent.request)
        .where(Request.product_id == product_id)
        .options(
            contains_eager(RequestEvent.request).options(*LEAVE_RECORDS),
            joinedload(RequestEvent.actor),
        )
        .order_by(RequestEvent.id.desc())
    )
    counted = (
        select(RequestEvent.id).join(RequestEvent.request).where(Request.product_id == product_id)
    )
    page = max(1, page)
    return paginate(
        query.limit(per_page).offset((page - 1) * per_page), page, per_page, counted=counted
    )


def _email_contains(term: str) -> tuple:
    """Where-clauses for contact emails that contain ``term``.

    An address's domain is shared by most contacts, so its trigrams match nearly every row and
    make the trigram index read a posting list of every contact: for a term with an ``@``, the
    index is asked only for the part up to it (``lead5000@``, a few rows), and the whole term is
    checked on those rows alone (``|| ''`` keeps that check out of the index).
    """
    contains = f"%{_escape_like(term)}%"
    local = term.split("@", 1)[0]
    if "@" not in term or len(local) < 3:
        return (ProductContact.email.like(contains, escape="\\"),)
    return (
        ProductContact.email.like(f"%{_escape_like(local)}@%", escape="\\"),
        ProductContact.email.concat("").like(contains, escape="\\"),
    )


def _escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
