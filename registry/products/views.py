from flask import abort, flash, render_template, request, url_for
from flask_login import current_user, login_required

from ..auth.access import roles_required
from ..auth.models import Role
from ..extensions import db
from ..htmx import redirect_to, render
from ..requests import queries as request_queries
from ..requests import services as request_services
from . import bp, queries
from .forms import ProductForm


@bp.get("/products")
@login_required
def mine():
    products = queries.for_user(current_user)
    active = request_queries.active_for_products([p.id for p in products])
    return render_template("products/mine.html", products=products, active=active)


# Support staff read everything and change nothing: they do not submit requests either.
REQUESTERS = (Role.USER, Role.SUPER_ADMIN)


@bp.route("/products/new", methods=["GET", "POST"])
@roles_required(*REQUESTERS)
def new():
    form = ProductForm(user=current_user)
    if form.validate_on_submit():
        req = request_services.submit_create(form.to_data(), current_user)
        message = (
            f"Your request for {req.product.name} ({req.product.licence_plate}) is with the "
            "super admins for review. You will get an email when it is decided."
        )
        target = url_for("requests.detail", request_id=req.id)
        db.session.commit()
        flash(message, "success")
        return redirect_to(target)
    status = 422 if form.errors else 200
    return render("products/new.html", block="form", status=status, form=form)


@bp.post("/products/new/validate")
@roles_required(*REQUESTERS)
def validate_field():
    """Inline validation: the message for one field, judged with the whole form (PO ≠ TL)."""
    form = ProductForm(user=current_user)
    form.validate()
    name = request.args.get("field", "")
    errors = form.field_errors()
    if name not in errors:
        abort(400)
    return render_template("products/_field_error.html", name=name, errors=errors[name])


@bp.get("/products/<plate>")
@login_required
def detail(plate: str):
    product = queries.get_visible(plate, current_user)
    if product is None:
        abort(404)
    requests = request_queries.for_products([product.id])[product.id]
    return render_template("products/detail.html", product=product, requests=requests)
