"""The API's pages: its OpenAPI document and reference, and where tokens are made and revoked
(a product's team on its product page, super admins on /admin/api-tokens)."""

from flask import Blueprint, abort, flash, jsonify, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..access import Role, roles_required
from ..extensions import db
from ..htmx import redirect_to
from ..products import queries as product_queries
from ..reference import services as reference
from . import bp, spec, tokens
from .models import Access, ApiToken, Scope

pages = Blueprint("api_tokens", __name__)


@bp.get("/openapi.json")
def openapi_document():
    """The OpenAPI 3.1 document of /api/v1 (no token needed)."""
    return jsonify(spec.openapi())


@bp.get("/docs")
def reference_page():
    """The API reference, read from the same document, as a page of the registry."""
    document = spec.openapi()
    return render_template(
        "api/reference.html", doc=document, schemas=document["components"]["schemas"]
    )


@bp.get("/docs/try")
def try_page():
    """The same document in Swagger UI (vendored, registry/static/VENDORED.md), to try calls."""
    return render_template("api/try.html")


def _team_product(plate: str):
    product = product_queries.get_visible(plate, current_user)
    if product is None:
        abort(404)
    return product


def _made(token, secret, back: str):
    """The new token's secret, shown this once (not flashed: it would sit in the cookie)."""
    return render_template("api/made.html", token=token, secret=secret, back=back,
                           describe=tokens.describe)  # fmt: skip


@pages.post("/products/<plate>/api-tokens")
@roles_required(Role.USER, Role.SUPER_ADMIN)
def make_product_token(plate: str):
    product = _team_product(plate)
    access = Access.REQUEST if request.form.get("access") == "request" else Access.READ
    back = url_for("products.detail", plate=product.licence_plate, _anchor="api-tokens")
    try:
        token, secret = tokens.create(
            request.form.get("name", ""), Scope.PRODUCT, access, current_user, product=product,
            days=_days(),
        )  # fmt: skip
        db.session.commit()
    except tokens.TokenError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return redirect_to(back)
    return _made(token, secret, back)


def _days() -> int | None:
    text = (request.form.get("days") or "").strip()
    if not text:
        return None
    if not text.isdigit() or len(text) > 5:
        raise tokens.TokenError("Give the number of days as a whole number.")
    return int(text)


@pages.post("/products/<plate>/api-tokens/<id:token_id>/revoke")
@roles_required(Role.USER, Role.SUPER_ADMIN)
def revoke_product_token(plate: str, token_id: int):
    product = _team_product(plate)
    token = db.session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.product_id == product.id)
    )
    if token is None:
        abort(404)
    return _revoke(token, url_for("products.detail", plate=plate, _anchor="api-tokens"))


def _revoke(token, back: str):
    try:
        tokens.revoke(token, current_user)
        db.session.commit()
        flash(f"Token “{token.name}” revoked: it is refused from now on.", "success")
    except tokens.TokenError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return redirect_to(back)


@pages.route("/admin/api-tokens", methods=["GET", "POST"])
@roles_required(Role.SUPER_ADMIN)
def staff_tokens():
    """Tokens over a ministry or every product: read, or read and decide."""
    if request.method == "POST":
        scope = Scope.MINISTRY if request.form.get("scope") == "ministry" else Scope.ALL
        access = Access.DECIDE if request.form.get("access") == "decide" else Access.READ
        ministry = (request.form.get("ministry") or "").strip().upper() or None
        try:
            if scope == Scope.MINISTRY and ministry not in {m.code for m in reference.ministries()}:
                raise tokens.TokenError("Choose the ministry the token reads.")
            token, secret = tokens.create(
                request.form.get("name", ""), scope, access, current_user,
                ministry_code=ministry, days=_days(),
            )  # fmt: skip
            db.session.commit()
        except tokens.TokenError as exc:
            db.session.rollback()
            flash(str(exc), "error")
            return redirect_to(url_for("api_tokens.staff_tokens"))
        return _made(token, secret, url_for("api_tokens.staff_tokens"))
    return render_template(
        "api/staff_tokens.html", tokens=tokens.staff_tokens(), ministries=reference.ministries(),
        describe=tokens.describe,
    )  # fmt: skip


@pages.post("/admin/api-tokens/<id:token_id>/revoke")
@roles_required(Role.SUPER_ADMIN)
def revoke_staff_token(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.scope == Scope.PRODUCT:
        abort(404)
    return _revoke(token, url_for("api_tokens.staff_tokens"))


def product_part(product) -> dict:
    """The product page's API tokens (wiring adds it to the page)."""
    return {"api_tokens": tokens.of_product(product.id), "describe_token": tokens.describe}
