"""A product's pages: My products and the product page. What the request workflow shows on
them (each product's open request, the requests, the history) comes from :mod:`.pages`, filled
in by ``registry.wiring``: products import nothing from requests."""

from flask import abort, current_app, render_template
from flask_login import current_user, login_required

from ..pagination import page_number
from . import bp, pages, queries


@bp.get("/products")
@login_required
def mine():
    page = queries.for_user(current_user, page_number(), current_app.config["PAGE_SIZE"])
    return render_template(
        "products/mine.html",
        page=page,
        products=page.items,
        **pages.parts.listing([p.id for p in page.items]),
    )


@bp.get("/products/<plate>")
@login_required
def detail(plate: str):
    product = queries.get_visible(plate, current_user)
    if product is None:
        abort(404)
    return render_template(
        "products/detail.html",
        product=product,
        **pages.parts.detail(product, page_number()),
    )
