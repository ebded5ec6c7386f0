"""/api/v1: products and requests to read, and the actions of the forms (a change, a deletion,
asking again, cancelling, a comment, a decision), each through the same services and rules as
the forms. A token reads only what its scope covers: anything else is 404, as for a person."""

import re

from flask import g
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import MultiDict

from ..extensions import db
from ..products import services as product_services
from ..products.models import Product
from ..reference.models import ENVIRONMENTS, QUOTA_KINDS
from ..requests import queries as request_queries
from ..requests import services as request_services
from ..requests import temporary
from ..requests.forms import ChangeForm, ProductForm
from ..requests.models import Request
from . import bp, schemas
from .models import Access, Scope
from .spec import Problem, endpoint, idempotency_key

DIGITS = re.compile(r"^[0-9]{1,9}$")  # an id the database's integer holds


# --- what a token covers ------------------------------------------------------------------------


def _covers():
    """What the token reads: a team's token its product and the products it asked for; a
    ministry's, that ministry's; everything's, everything."""
    token = g.api_token
    if token.scope == Scope.PRODUCT:
        return (Product.id == token.product_id) | (Product.created_by_id == token.user_id)
    if token.scope == Scope.MINISTRY:
        return Product.ministry_code == token.ministry_code
    return Product.id.is_not(None)


def _product(plate: str) -> Product:
    product = db.session.scalar(
        select(Product)
        .where(Product.licence_plate == plate, _covers())
        .options(selectinload(Product.contacts), selectinload(Product.namespaces))
    )
    if product is None:
        raise Problem(404, f"No product {plate[:20]} that this token covers.")
    return product


def _request(request_id: str) -> Request:
    if not DIGITS.match(request_id):
        raise Problem(404, "No such request.")
    found = db.session.scalar(
        select(Request).join(Product).where(Request.id == int(request_id), _covers())
    )
    if found is None:
        raise Problem(404, f"No request {request_id} that this token covers.")
    return found


def _cursor(text: str | None) -> int | None:
    if text is None:
        return None
    if not DIGITS.match(text):
        raise Problem(422, "Not a cursor this API gave.", [{"field": "cursor", "message": "bad"}])
    return int(text)


# --- shapes --------------------------------------------------------------------------------------


def _summary(req: Request | None) -> schemas.RequestSummary | None:
    if req is None:
        return None
    return schemas.RequestSummary(
        id=req.id, kind=req.type, status=req.status, outcome=req.outcome_label,
        created_at=req.created_at,
    )  # fmt: skip


def product_shape(product: Product, active: Request | None, ends=True) -> schemas.Product:
    """``ends``: read the open temporary increase's day (one statement; the cluster's state,
    which lists thousands, leaves it out)."""
    live = product_services.live_data(product)
    ending = temporary.open_for(product.id) if ends else None
    return schemas.Product(
        licence_plate=product.licence_plate,
        name=product.name,
        description=product.description,
        ministry=product.ministry_code,
        cluster=product.cluster_name,
        state=product.status,
        created_at=product.created_at,
        contacts=live["contacts"],
        namespaces=[
            schemas.Namespace(name=ns.name, environment=ns.environment, quotas=ns.quotas())
            for ns in product.sorted_namespaces
        ],
        open_request=_summary(active),
        temporary_increase_ends_on=ending.ends_on if ending else None,
    )


def request_shape(req: Request, timeline: bool = True) -> schemas.Request:
    return schemas.Request(
        id=req.id,
        licence_plate=req.product.licence_plate,
        kind=req.type,
        status=req.status,
        outcome=req.outcome_label,
        requested_by=req.requested_by.name,
        created_at=req.created_at,
        decided_at=req.decided_at,
        decided_by=req.decided_by.name if req.decided_by else None,
        decision_comment=req.decision_comment,
        justification=req.justification,
        quota_ends_on=req.quota_ends_on,
        usage_evidence=req.usage_evidence,
        asked=req.requested_data,
        granted=req.decision_data,
        timeline=[
            schemas.Event(
                at=e.created_at,
                kind=e.kind,
                status=e.to_status,
                label=e.to_label,
                note=e.note,
                step=e.step,
                cluster=e.cluster,
            )
            for e in req.events
        ]
        if timeline
        else [],
    )


# --- reading -------------------------------------------------------------------------------------


@endpoint(bp, "GET", "/products", tag="products", query=schemas.ProductsQuery,
          answer=schemas.ProductPage, etag=True)  # fmt: skip
def list_products(query: schemas.ProductsQuery):
    """The products this token covers, a page at a time

    Filters by ministry, cluster, state (active, requested, ...), and ``q``: a licence plate,
    or the start of a name. ``next_cursor`` is the next page's ``cursor``."""
    where = [_covers()]
    if query.ministry:
        where.append(Product.ministry_code == query.ministry.upper())
    if query.cluster:
        where.append(Product.cluster_name == query.cluster.lower())
    if query.state:
        where.append(Product.status == query.state)
    if query.q:
        text = query.q.strip().lower()
        where.append(
            (Product.licence_plate == text) | Product.search_name.startswith(text, autoescape=True)
        )
    after = _cursor(query.cursor)
    if after is not None:
        where.append(Product.id > after)
    rows = db.session.execute(
        select(
            Product.id,
            Product.licence_plate,
            Product.name,
            Product.ministry_code,
            Product.cluster_name,
            Product.status,
        )
        .where(*where)
        .order_by(Product.id)
        .limit(query.limit + 1)
    ).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    active = request_queries.active_for_products([r.id for r in rows])
    return schemas.ProductPage(
        items=[
            schemas.ProductSummary(
                licence_plate=r.licence_plate,
                name=r.name,
                ministry=r.ministry_code,
                cluster=r.cluster_name,
                state=r.status,
                open_request=_summary(active.get(r.id)),
            )
            for r in rows
        ],
        next_cursor=str(rows[-1].id) if more else None,
    )


@endpoint(bp, "GET", "/products/<plate>", tag="products", answer=schemas.Product, etag=True)
def get_product(plate: str):
    """One product: its live quotas, contacts, namespaces, state and open request"""
    product = _product(plate)
    return product_shape(product, request_services.active_request(product))


@endpoint(bp, "GET", "/requests", tag="requests", query=schemas.RequestsQuery,
          answer=schemas.RequestPage, etag=True)  # fmt: skip
def list_requests(query: schemas.RequestsQuery):
    """The requests of the products this token covers, newest first"""
    where = [_covers()]
    if query.product:
        where.append(Product.licence_plate == query.product.lower())
    if query.status:
        where.append(Request.status == query.status)
    before = _cursor(query.cursor)
    if before is not None:
        where.append(Request.id < before)
    found = db.session.scalars(
        select(Request).join(Product).where(*where).order_by(Request.id.desc())
        .limit(query.limit + 1)
    ).all()  # fmt: skip
    more = len(found) > query.limit
    found = found[: query.limit]
    return schemas.RequestPage(
        items=[_summary(r) for r in found], next_cursor=str(found[-1].id) if more else None
    )


@endpoint(bp, "GET", "/requests/<request_id>", tag="requests", answer=schemas.Request, etag=True)
def get_request(request_id: str):
    """One request, with what was asked and granted, and its timeline"""
    return request_shape(_request(request_id))


# --- asking --------------------------------------------------------------------------------------


def _key() -> str | None:
    """The Idempotency-Key as the request's one-time submission key (per token)."""
    key = idempotency_key()
    return f"api:{g.api_token.id}:{key}" if key is not None else None


def _once(submit):
    """``submit()`` once per Idempotency-Key: the same key again answers with what the first
    call made (200), a new one with what this call made (201)."""
    key = _key()
    earlier = request_services.by_submission_key(key, g.api_token.user)
    if earlier is not None:
        return request_shape(earlier), 200, {"Location": f"/api/v1/requests/{earlier.id}"}
    too_many = request_services.submission_blocker(g.api_token.user)
    if too_many is not None:  # the form's hourly number, for the token's account
        raise Problem(429, str(too_many), headers={"Retry-After": str(too_many.minutes * 60)})
    try:
        made = submit(key)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        earlier = request_services.by_submission_key(key, g.api_token.user)
        if earlier is None:
            raise
        made = earlier
    return request_shape(made), 201, {"Location": f"/api/v1/requests/{made.id}"}


def _refused(exc: request_services.RequestError) -> Problem:
    status = {
        request_services.ActiveRequestExists: 409,
        request_services.WrongState: 409,
        request_services.AlreadyDecided: 409,
        request_services.DecidedConcurrently: 409,
        request_services.NotAllowed: 403,
        request_services.TooManySubmissions: 429,
    }
    for kind, code in status.items():
        if isinstance(exc, kind):
            return Problem(code, str(exc))
    return Problem(422, str(exc))


def _form_data(live: dict, change: schemas.Change) -> MultiDict:
    """The change form as a browser would send it: the live values, then what ``change`` says."""
    values = {
        "name": change.name if change.name is not None else live["name"],
        "description": change.description if change.description is not None
        else live["description"],
        "ministry": change.ministry if change.ministry is not None else live["ministry"],
    }  # fmt: skip
    contacts = {"owner": "product_owner", "primary_lead": "primary_lead",
                "secondary_lead": "secondary_lead"}  # fmt: skip
    for role, prefix in contacts.items():
        given = getattr(change, role)
        current = live["contacts"].get(role) or {}
        if role == "secondary_lead" and change.remove_secondary_lead:
            current, given = {}, None
        person = given.model_dump() if given is not None else current
        for part in ("first_name", "last_name", "email"):
            values[f"{prefix}-{part}"] = person.get(part) or ""
    for env in ENVIRONMENTS:
        asked = change.quotas.get(env)
        for kind in QUOTA_KINDS:
            new = getattr(asked, kind) if asked is not None else None
            values[f"{env}-{kind}"] = new or live["namespaces"][env][kind]
    return MultiDict(values)


def _form_errors(form) -> list[dict]:
    names = {"product_owner": "owner"}
    found = []
    for name, messages in form.field_errors().items():
        if not messages or name in ("csrf_token", "submission_key"):
            continue
        head, _, tail = name.partition("-")
        if tail and head in ENVIRONMENTS:
            field = f"quotas.{head}.{tail}"
        elif tail:
            field = f"{names.get(head, head)}.{tail}"
        else:
            field = head
        found += [{"field": field, "message": m} for m in messages]
    return found


def _require_team(product: Product) -> None:
    token = g.api_token
    ours = token.product_id == product.id or product.created_by_id == token.user_id
    if token.scope != Scope.PRODUCT or not ours:
        raise Problem(403, "Only a token of this product's team asks for its changes.")


@endpoint(bp, "POST", "/products/<plate>/changes", tag="asking", access=Access.REQUEST,
          body=schemas.Change, answer=schemas.Request, status=201, idempotent=True,
          errors=(401, 403, 404, 409, 422, 429))  # fmt: skip
def ask_for_change(plate: str, body: schemas.Change):
    """Ask for a change to a live product

    Only what is sent changes; the rest keeps its live value. The automatic-approval rules decide
    the path as on the form: a decrease is applied at once, an increase that measured usage does
    not support waits for a super admin and needs a ``justification``."""
    product = _product(plate)
    _require_team(product)
    form = ChangeForm(
        formdata=_form_data(product_services.live_data(product), body),
        user=g.api_token.user,
        product=product,
        meta={"csrf": False},
    )
    if not form.validate():
        raise Problem(422, "Some fields are not valid.", _form_errors(form))
    ends_on = temporary.KEEP
    if body.keep_quotas:
        ends_on = None
    elif "quota_ends_on" in body.model_fields_set:
        ends_on = body.quota_ends_on

    def submit(key):
        return request_services.submit_edit(
            product,
            form.to_data(),
            g.api_token.user,
            key,
            justification=body.justification,
            ends_on=ends_on,
        )

    try:
        return _once(submit)
    except request_services.JustificationNeeded as exc:
        raise Problem(422, str(exc), [{"field": "justification", "message": str(exc)}]) from None
    except request_services.RequestError as exc:
        raise _refused(exc) from None


@endpoint(bp, "POST", "/products/<plate>/deletion", tag="asking", access=Access.REQUEST,
          body=schemas.Deletion, answer=schemas.Request, status=201, idempotent=True,
          errors=(401, 403, 404, 409, 422, 429))  # fmt: skip
def ask_for_deletion(plate: str, body: schemas.Deletion):
    """Ask for a live product to be deleted (a super admin decides)"""
    product = _product(plate)
    _require_team(product)
    try:
        return _once(
            lambda key: request_services.submit_delete(
                product, g.api_token.user, product.licence_plate, key, body.reason
            )
        )
    except request_services.RequestError as exc:
        raise _refused(exc) from None


@endpoint(bp, "POST", "/requests/<request_id>/cancel", tag="asking", access=Access.REQUEST,
          answer=schemas.Request, errors=(401, 403, 404, 409, 429))  # fmt: skip
def cancel_request(request_id: str):
    """Withdraw a pending request this token made"""
    req = _request(request_id)
    try:
        request_services.cancel(req.id, g.api_token.user)
        db.session.commit()
    except request_services.RequestError as exc:
        raise _refused(exc) from None
    return request_shape(req)


@endpoint(bp, "POST", "/requests/<request_id>/comments", tag="asking", access=Access.REQUEST,
          body=schemas.Comment, answer=schemas.Request, status=201,
          errors=(401, 403, 404, 409, 422, 429))  # fmt: skip
def comment_on_request(request_id: str, body: schemas.Comment):
    """Comment on a pending or failed request (emailed to the super admins)"""
    req = _request(request_id)
    _require_team(req.product)
    try:
        request_services.add_comment(req, g.api_token.user, body.body)
        db.session.commit()
    except request_services.CommentClosed as exc:
        raise Problem(409, str(exc)) from None
    except request_services.RequestError as exc:
        raise _refused(exc) from None
    return request_shape(req)


def _new_form(body: schemas.NewProduct, product=None):
    """The new-product form as a browser would send it, validated with every rule it has."""
    values = {
        "name": body.name,
        "description": body.description,
        "ministry": body.ministry,
        "cluster": body.cluster,
    }
    contacts = {"owner": "product_owner", "primary_lead": "primary_lead",
                "secondary_lead": "secondary_lead"}  # fmt: skip
    for role, prefix in contacts.items():
        person = getattr(body, role)
        for part in ("first_name", "last_name", "email"):
            values[f"{prefix}-{part}"] = getattr(person, part) if person is not None else ""
    for env in ENVIRONMENTS:
        quotas = body.quotas.get(env)
        for kind in QUOTA_KINDS:
            values[f"{env}-{kind}"] = getattr(quotas, kind) if quotas is not None else ""
    form = ProductForm(formdata=MultiDict(values), user=g.api_token.user, meta={"csrf": False})
    if product is not None:
        form.own_plate = product.licence_plate
    if not form.validate():
        raise Problem(422, "Some fields are not valid.", _form_errors(form))
    return form


@endpoint(bp, "POST", "/products", tag="asking", access=Access.REQUEST,
          body=schemas.NewProduct, answer=schemas.Request, status=201, idempotent=True,
          errors=(401, 403, 422, 429))  # fmt: skip
def ask_for_product(body: schemas.NewProduct):
    """Ask for a new product (a super admin decides)

    The token may then read the product, follow its request and ask for its changes, as it does
    for its own product."""
    form = _new_form(body)
    try:
        return _once(
            lambda key: request_services.submit_create(form.to_data(), g.api_token.user, key)
        )
    except request_services.RequestError as exc:
        raise _refused(exc) from None


@endpoint(bp, "POST", "/products/<plate>/request-again", tag="asking", access=Access.REQUEST,
          body=schemas.NewProduct, answer=schemas.Request, status=201, idempotent=True,
          errors=(401, 403, 404, 409, 422, 429))  # fmt: skip
def ask_again(plate: str, body: schemas.NewProduct):
    """Ask again for a product whose first request was rejected or cancelled"""
    product = _product(plate)
    _require_team(product)
    form = _new_form(body, product)
    try:
        return _once(
            lambda key: request_services.submit_again(
                product, form.to_data(), g.api_token.user, key
            )
        )
    except request_services.RequestError as exc:
        raise _refused(exc) from None


# --- deciding ------------------------------------------------------------------------------------


@endpoint(bp, "POST", "/requests/<request_id>/decision", tag="deciding", access=Access.DECIDE,
          body=schemas.Decision, answer=schemas.Request,
          errors=(401, 403, 404, 409, 422, 429))  # fmt: skip
def decide_request(request_id: str, body: schemas.Decision):
    """Approve or reject a pending request (a super admin's token)

    Separation of duties holds for the token's own account and for the super admin who made the
    token: neither decides a request of a product they had a hand in."""
    req = _request(request_id)
    maker = g.api_token.created_by
    blocker = request_services.decision_blocker(req, maker) if req.is_pending else None
    if blocker:
        raise Problem(403, f"The super admin who made this token may not decide it: {blocker}")
    quotas = {
        env: {k: v for k, v in q.model_dump().items() if v} for env, q in body.quotas.items()
    } or None
    ends_on = body.quota_ends_on if "quota_ends_on" in body.model_fields_set else temporary.KEEP
    try:
        decided = request_services.decide(
            req.id,
            g.api_token.user,
            body.decision == "approve",
            body.comment,
            quotas=quotas,
            ends_on=ends_on,
        )
        db.session.commit()
    except LookupError:
        raise Problem(404, "No such request.") from None
    except request_services.RequestError as exc:
        raise _refused(exc) from None
    return request_shape(decided)


@endpoint(bp, "GET", "/clusters/<cluster>/state", tag="pipelines", answer=schemas.ClusterState,
          etag=True)  # fmt: skip
def cluster_state(cluster: str):
    """The desired state of every active product on a cluster

    What a GitOps pipeline should hold: each product's namespaces and quotas. Send the ETag back
    in If-None-Match: an answer that did not change is a 304 with no body."""
    products = db.session.scalars(
        select(Product)
        .where(Product.cluster_name == cluster[:20], Product.status == "active", _covers())
        .options(selectinload(Product.contacts), selectinload(Product.namespaces))
        .order_by(Product.licence_plate)
    ).all()
    return schemas.ClusterState(
        cluster=cluster[:20], products=[product_shape(p, None, ends=False) for p in products]
    )
