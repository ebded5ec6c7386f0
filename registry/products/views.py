from flask import abort, current_app, flash, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.exc import IntegrityError

from ..auth.access import roles_required
from ..auth.models import Role
from ..extensions import db
from ..htmx import is_htmx, redirect_to, render
from ..inputs import validates_its_form
from ..pagination import page_number
from ..requests import queries as request_queries
from ..requests import services as request_services
from ..requests.models import RequestType
from . import bp, queries
from . import services as product_services
from .forms import CONTACT_EMAILS, CONTACT_GROUPS, ChangeForm, DeletionForm, ProductForm


@bp.get("/products")
@login_required
def mine():
    page = queries.for_user(current_user, page_number(), current_app.config["PAGE_SIZE"])
    active = request_queries.active_for_products([p.id for p in page.items])
    return render_template("products/mine.html", page=page, products=page.items, active=active)


# Support staff read everything and change nothing: they do not submit requests either.
REQUESTERS = (Role.USER, Role.SUPER_ADMIN)


def _submit_once(form, submit):
    """Run ``submit()`` and commit, unless this form was sent before: then the request the
    first send made. Two sends at the same instant race on the key's unique index; the loser
    rolls back and is shown the winner's request, or the error the winner's request now causes
    (one open request per product)."""
    earlier = request_services.by_submission_key(form.key, current_user)
    if earlier is not None:
        return earlier
    try:
        req = submit()
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        earlier = request_services.by_submission_key(form.key, current_user)
        if earlier is not None:
            return earlier
        req = submit()  # raises the rule the concurrent request broke, as a RequestError
        db.session.commit()
    return req


def _sent(req, message: str):
    flash(message, "success")
    return redirect_to(url_for("requests.detail", request_id=req.id))


def _step() -> str:
    """Where a browser's form is: ``review`` asks for the summary before anything is sent,
    ``edit`` goes back from the summary to the form. A post without it (a script, a test, the
    summary's own "Send the request") sends the request, as it always did."""
    return request.form.get("step", "") if request.method == "POST" else ""


def _form_page(template: str, form, status: int = 200, **context):
    """The new-product form (or its summary), whole or as the form alone for HTMX."""
    same_name = queries.same_name(form.name.data, current_user, form.own_plate)
    return render(template, block="form", status=status, form=form, same_name=same_name, **context)


@bp.route("/products/new", methods=["GET", "POST"])
@roles_required(*REQUESTERS)
@validates_its_form
def new():
    form = ProductForm(user=current_user)
    if _step() == "edit":
        return _form_page("products/new.html", form, back=True)
    if form.validate_on_submit():
        if _step() == "review":
            return _form_page("products/new.html", form, review=True)
        req = _submit_once(
            form, lambda: request_services.submit_create(form.to_data(), current_user, form.key)
        )
        return _sent(
            req,
            f"Your request for {req.product.name} ({req.product.licence_plate}) is with the "
            "super admins for review. You will get an email when it is decided.",
        )
    status = 422 if form.errors else 200
    return render("products/new.html", block="form", status=status, form=form)


@bp.post("/products/new/validate")
@roles_required(*REQUESTERS)
@validates_its_form
def validate_field():
    """Inline validation: the message for one field, judged with the whole form (PO ≠ TL).

    A contact's email also answers, out of band, for the other contact emails that hold a
    value (their "a different person" message may have come or gone); the name also answers
    with the warning that another product has it (``?plate=``: the product's own, left out)."""
    form = ProductForm(user=current_user)
    form.validate()
    name = request.args.get("field", "")
    errors = form.field_errors()
    if name not in errors:
        abort(400)
    parts = [render_template("products/_field_error.html", name=name, errors=errors[name])]
    if name in CONTACT_EMAILS:
        for other in CONTACT_EMAILS:
            if other != name and (request.form.get(other) or "").strip():
                parts.append(
                    render_template(
                        "products/_field_error.html", name=other, errors=errors[other], oob=True
                    )
                )
    if name == "name":
        same_name = queries.same_name(form.name.data, current_user, request.args.get("plate"))
        parts.append(render_template("products/_name_warning.html", same_name=same_name, oob=True))
    return "\n".join(parts)


@bp.get("/products/people")
@roles_required(*REQUESTERS)
def people():
    """Active search for a contact: the people the registry knows (its users, its products'
    contacts) by name or email, only their names and emails, for those who may ask for
    products. Fewer than ``PEOPLE_MIN_CHARS`` characters find nobody."""
    text = request.args.get("q", "").strip()
    contact = request.args.get("contact", "")
    if contact not in CONTACT_GROUPS:
        contact = ""
    too_short = len(text) < queries.PEOPLE_MIN_CHARS
    found = [] if too_short else queries.people(text)
    return render_template(
        "products/_people.html",
        people=found,
        contact=contact,
        text=text,
        too_short=too_short,
        minimum=queries.PEOPLE_MIN_CHARS,
    )


@bp.get("/products/<plate>")
@login_required
def detail(plate: str):
    product = queries.get_visible(plate, current_user)
    if product is None:
        abort(404)
    requests = request_queries.for_products([product.id])[product.id]
    history = request_queries.product_history(product.id, page_number())
    return render_template(
        "products/detail.html",
        product=product,
        history=history,
        **queries.product_page(product, requests),
    )


def _requestable(plate: str):
    """The product, for someone who may ask for it to change: its team or a super admin."""
    product = queries.get_visible(plate, current_user)
    if product is None:
        abort(404)
    return product


def _refused(product, exc: request_services.RequestError, status: int = 409, **context):
    """Another request is open, or the product is not in a state for this one: the product
    page, with the reason and a link to the open request. A form sent through HTMX gets the
    reason in its place instead."""
    if is_htmx():
        return render_template("products/_refused_form.html", product=product, refusal=exc), status
    requests = request_queries.for_products([product.id])[product.id]
    return render(
        "products/detail.html",
        status=status,
        product=product,
        refusal=exc,
        **queries.product_page(product, requests),
        **context,
    )


@bp.route("/products/<plate>/change", methods=["GET", "POST"])
@roles_required(*REQUESTERS)
@validates_its_form
def change(plate: str):
    """Ask for a change: the form holds the live values; the team sees the diff and the path
    (automatic or review) before the request is made."""
    product = _requestable(plate)
    live = product_services.live_data(product)
    form = ChangeForm(user=current_user, product=product, data=ProductForm.values_of(live))
    blocker = request_services.blocker_for(product, RequestType.EDIT)
    if blocker is not None:
        return _refused(product, blocker)
    if request.method == "GET":
        return render_template("products/change.html", form=form, product=product)
    if not form.validate_on_submit():
        return render("products/change.html", block="form", status=422, form=form, product=product)
    data = form.to_data()
    _, _, changes, verdict = request_services.preview_edit(product, data)
    if not changes:
        error = request_services.NothingChanged()
        return render(
            "products/change.html",
            block="form",
            status=422,
            form=form,
            product=product,
            nothing=str(error),
        )
    if request.form.get("confirmed") != "yes":
        return render(
            "products/change.html",
            block="form",
            form=form,
            product=product,
            changes=changes,
            verdict=verdict,
        )
    try:
        req = _submit_once(
            form, lambda: request_services.submit_edit(product, data, current_user, form.key)
        )
    except request_services.RequestError as exc:
        db.session.rollback()
        return _refused(product, exc)
    if req.is_auto_approved:
        message = f"Your change to {product.name} was approved automatically and is being applied."
    else:
        message = f"Your change to {product.name} is with the super admins for review."
    return _sent(req, message)


@bp.post("/products/<plate>/change/preview")
@roles_required(*REQUESTERS)
@validates_its_form
def change_preview(plate: str):
    """While the form is filled in: the changes so far and the path they would take."""
    product = _requestable(plate)
    form = ChangeForm(user=current_user, product=product)
    if not form.validate():
        return render_template("products/_change_summary.html", invalid=True)
    _, _, changes, verdict = request_services.preview_edit(product, form.to_data())
    return render_template("products/_change_summary.html", changes=changes, verdict=verdict)


@bp.route("/products/<plate>/delete", methods=["GET", "POST"])
@roles_required(*REQUESTERS)
@validates_its_form
def delete(plate: str):
    """Ask for the product to be deleted; the team types its licence plate to confirm."""
    product = _requestable(plate)
    form = DeletionForm()
    blocker = request_services.blocker_for(product, RequestType.DELETE)
    if blocker is not None:
        return _refused(product, blocker)
    if request.method == "GET":
        return render_template("products/delete.html", form=form, product=product)
    if not form.validate_on_submit():
        abort(400)
    try:
        req = _submit_once(
            form,
            lambda: request_services.submit_delete(
                product, current_user, form.confirmation.data, form.key
            ),
        )
    except request_services.ConfirmationMismatch as exc:
        db.session.rollback()
        return render(
            "products/delete.html", status=422, form=form, product=product, error=str(exc)
        )
    except request_services.RequestError as exc:
        db.session.rollback()
        return _refused(product, exc)
    return _sent(req, f"Your request to delete {product.name} is with the super admins for review.")


@bp.route("/products/<plate>/request-again", methods=["GET", "POST"])
@roles_required(*REQUESTERS)
@validates_its_form
def request_again(plate: str):
    """Ask again for a product that was never created: the last request's data, its reason."""
    product = _requestable(plate)
    blocker = request_services.blocker_for(product, RequestType.CREATE)
    if blocker is not None:
        return _refused(product, blocker)
    last = request_queries.last_create(product.id)
    form = ProductForm(user=current_user, data=ProductForm.values_of(last.requested_data))
    form.own_plate = product.licence_plate
    context = {"form": form, "product": product, "last": last}
    if request.method == "GET":
        return render_template("products/new.html", **context)
    if _step() == "edit":
        return _form_page("products/new.html", form, product=product, last=last, back=True)
    if not form.validate_on_submit():
        return render("products/new.html", block="form", status=422, **context)
    if _step() == "review":
        return _form_page("products/new.html", form, product=product, last=last, review=True)
    try:
        req = _submit_once(
            form,
            lambda: request_services.submit_again(product, form.to_data(), current_user, form.key),
        )
    except request_services.RequestError as exc:
        db.session.rollback()
        return _refused(product, exc)
    return _sent(
        req,
        f"Your new request for {req.product.name} ({req.product.licence_plate}) is with the "
        "super admins for review.",
    )
