"""What the request workflow shows on a product's pages (``registry.products.pages``, connected
in ``registry.wiring``): each product's open request on My products; the requests, the open one
and the change it would make, and a page of the history on the product page."""

from ..extensions import db
from ..products.models import Product
from ..usage import namespaces as usage
from . import changes, queries, temporary
from .models import RequestStatus, RequestType


def listing(product_ids: list[int]) -> dict:
    return {"active": queries.active_for_products(product_ids)}


def detail(product: Product, page: int = 1) -> dict:
    requests = queries.for_products([product.id])[product.id]
    return {
        "history": queries.product_history(product.id, page),
        **product_page(product, requests),
    }


def _usage(product: Product, built: bool) -> dict | None:
    """The product page's usage: None when usage is off or nothing runs; else what was measured
    (or why it could not be) and a row per namespace and resource."""
    if not built or product.status == "deleted" or not usage.is_on():
        return None
    measured = usage.usage_of(product.licence_plate, product.cluster_name)
    rows = usage.rows(product.sorted_namespaces, measured) if measured.available else []
    return {"measured": measured, "rows": rows}


def product_page(product: Product, requests: list) -> dict:
    """What the product page shows besides the product: its open request, the change that
    request would make to what is live, and whether the product was ever built.

    ``requests``: the product's requests, newest first.
    """
    active = next((r for r in requests if r.is_active), None)
    pending_changes = []
    if active is not None and active.type == RequestType.EDIT:
        # Its records, in one statement (the list left them in the database).
        db.session.refresh(active, ["original_data", "requested_data", "decision_data"])
        pending_changes = changes.diff(active.original_data, active.granted_data)
    built = any(
        r.type == RequestType.CREATE and r.status == RequestStatus.PROVISIONED for r in requests
    )
    last_create = next((r for r in requests if r.type == RequestType.CREATE), None)
    ending = temporary.open_for(product.id) if product.status != "deleted" else None
    return {
        "usage": _usage(product, built),
        "temporary": ending,
        "going_back": temporary.going_back(ending) if ending else [],
        "requests": requests,
        "active": active,
        "pending_changes": pending_changes,
        "built": built,
        "last_create": last_create,
    }
