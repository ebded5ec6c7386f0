"""Right-sizing's answers on the product page, and the cost report for the staff."""

from flask import abort, flash, url_for
from flask_login import current_user

from ..access import Role, roles_required
from ..audit.views import csv_response
from ..extensions import db
from ..htmx import redirect_to, render
from ..products import queries as product_queries
from ..requests import services as request_services
from . import bp, costs, savings

# Those who may ask for a product's changes: its team and super admins (support only reads).
TEAM = (Role.USER, Role.SUPER_ADMIN)


def _product(plate: str):
    product = product_queries.get_visible(plate, current_user)
    if product is None:
        abort(404)
    return product


def _back(product, message: str, category: str = "success"):
    flash(message, category)
    return redirect_to(url_for("products.detail", plate=product.licence_plate, _anchor="saving"))


@bp.post("/products/<plate>/savings/<id:offer_id>/apply")
@roles_required(*TEAM)
def apply_saving(plate: str, offer_id: int):
    """ "Apply this saving": the offered decrease, asked in the team member's name."""
    product = _product(plate)
    too_many = request_services.submission_blocker(current_user)
    if too_many is not None:
        return _back(product, str(too_many), "error")
    try:
        req = savings.apply(offer_id, product, current_user)
        db.session.commit()
    except request_services.RequestError as exc:
        db.session.rollback()
        return _back(product, str(exc), "error")
    flash(
        "The smaller quotas are asked for"
        + (" and being applied." if req.is_auto_approved else "; a super admin reviews them."),
        "success",
    )
    return redirect_to(url_for("requests.detail", request_id=req.id))


@bp.post("/products/<plate>/savings/<id:offer_id>/dismiss")
@roles_required(*TEAM)
def dismiss_saving(plate: str, offer_id: int):
    """ "Not now": no offer for this product for a while."""
    product = _product(plate)
    try:
        offer = savings.dismiss(offer_id, product, current_user)
        db.session.commit()
    except request_services.RequestError as exc:
        db.session.rollback()
        return _back(product, str(exc), "error")
    return _back(
        product, f"No saving will be offered again before {offer.silenced_until:%d %b %Y}."
    )


@bp.get("/reports/cost")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def cost_report():
    return render("capacity/cost_report.html", report=costs.report(), names=costs.ministry_names())


@bp.get("/reports/cost.csv")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def cost_report_csv():
    report = costs.report()
    names = costs.ministry_names()
    rows = (
        [
            month,
            ministry,
            names.get(ministry, ministry),
            report.products.get(ministry, {}).get(month, 0),
            f"{by_month.get(month, 0.0):.2f}",
            report.currency,
        ]
        for ministry, by_month in report.rows.items()
        for month in report.months
        if month in by_month
    )
    return csv_response(
        "cost-by-ministry-and-month.csv",
        ["month", "ministry", "ministry_name", "products", "cost", "currency"],
        rows,
    )
