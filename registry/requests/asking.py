from datetime import timedelta

from flask import Blueprint, abort, flash, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from ..access import Role, roles_required
from ..extensions import db
from ..htmx import is_htmx, redirect_to, render
from ..inputs import validates_its_form
from ..products import queries
from ..products import services as product_services
from ..usage import namespaces as usage
from . import product_pages, temporary
from . import queries as request_queries
from . import services as request_services
from .forms import CONTACT_EMAILS, CONTACT_GROUPS, ChangeForm, DeletionForm, ProductForm
from .models import RequestType

# Asking: a new product, a change, a deletion, a product again; their forms, inline checks and
# previews. URLs under /products, where the team asks.
bp = Blueprint("asking", __name__)


# Support staff read everything and change nothing: they do not submit requests either.
REQUESTERS = (Role.USER, Role.SUPER_ADMIN)


def _submit_once(form, submit):
    """Run ``submit()`` and commit, unless this form was sent before: then the request the
    first send made. Two sends at the same instant race on the key's unique index; the loser
    rolls back and is shown the winner's request, or the error the winner's request now causes
    (one open request per product). Raises ``TooManySubmissions`` for a new request past the
    person's hourly number."""
    earlier = request_services.by_submission_key(form.key, current_user)
    if earlier is not None:
        return earlier
    too_many = request_services.submission_blocker(current_user)
    if too_many is not None:
        raise too_many
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
        return _form_page("asking/new.html", form, back=True)
    if form.validate_on_submit():
        if _step() == "review":
            return _form_page("asking/new.html", form, review=True)
        try:
            req = _submit_once(
                form,
                lambda: request_services.submit_create(form.to_data(), current_user, form.key),
            )
        except request_services.TooManySubmissions as exc:
            return _form_page("asking/new.html", form, status=429, refusal=str(exc))
        return _sent(
            req,
            f"Your request for {req.product.name} ({req.product.licence_plate}) is with the "
            "super admins for review. You will get an email when it is decided.",
        )
    status = 422 if form.errors else 200
    return render("asking/new.html", block="form", status=status, form=form)


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
    parts = [render_template("asking/_field_error.html", name=name, errors=errors[name])]
    if name in CONTACT_EMAILS:
        for other in CONTACT_EMAILS:
            if other != name and (request.form.get(other) or "").strip():
                parts.append(
                    render_template(
                        "asking/_field_error.html", name=other, errors=errors[other], oob=True
                    )
                )
    if name == "name":
        same_name = queries.same_name(form.name.data, current_user, request.args.get("plate"))
        parts.append(render_template("asking/_name_warning.html", same_name=same_name, oob=True))
    return "\n".join(parts)


@bp.get("/products/people")
@roles_required(*REQUESTERS)
def people():
    """Active search for a contact among the people the asker may know (``queries.people``),
    by the start of a name or email; only names and emails, for those who may ask for
    products. Fewer than ``PEOPLE_MIN_CHARS`` characters find nobody."""
    text = request.args.get("q", "").strip()
    contact = request.args.get("contact", "")
    if contact not in CONTACT_GROUPS:
        contact = ""
    too_short = len(text) < queries.PEOPLE_MIN_CHARS
    found = [] if too_short else queries.people(text, current_user)
    return render_template(
        "asking/_people.html",
        people=found,
        contact=contact,
        text=text,
        too_short=too_short,
        minimum=queries.PEOPLE_MIN_CHARS,
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
        return render_template("asking/_refused_form.html", product=product, refusal=exc), status
    return render(
        "products/detail.html",
        status=status,
        product=product,
        refusal=exc,
        **product_pages.detail(product),
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
    current = temporary.open_for(product.id)
    values = ProductForm.values_of(live) | {"ends_on": current.ends_on if current else None}
    form = ChangeForm(user=current_user, product=product, data=values)
    blocker = request_services.blocker_for(product, RequestType.EDIT)
    if blocker is not None:
        return _refused(product, blocker)
    tomorrow = (temporary.today() + timedelta(days=1)).isoformat()
    measured = (
        usage.usage_of(product.licence_plate, product.cluster_name) if usage.is_on() else None
    )
    context = {"product": product, "temporary": current, "tomorrow": tomorrow, "usage": measured}
    if request.method == "GET":
        return render_template("asking/change.html", form=form, **context)
    if not form.validate_on_submit():
        return render("asking/change.html", block="form", status=422, form=form, **context)
    data = form.to_data()
    ends_on = _ends_on(form)
    before, after, changes, verdict = request_services.preview_edit(product, data, ends_on)
    problem = temporary.end_problem(temporary.resolve(current, ends_on), verdict.increases, current)
    if problem:
        form.ends_on.errors = [problem]
        return render("asking/change.html", block="form", status=422, form=form, **context)
    if not changes:
        error = request_services.NothingChanged()
        return render(
            "asking/change.html",
            block="form",
            status=422,
            form=form,
            nothing=str(error),
            **context,
        )

    def check_step(status: int = 200, **more):
        """The change as a diff with its path and cost, and one button to send it."""
        return render(
            "asking/change.html",
            block="form",
            status=status,
            form=form,
            changes=changes,
            verdict=verdict,
            quotas_before=before["namespaces"],
            quotas_after=after["namespaces"],
            ends_on=temporary.resolve(current, ends_on),
            **context,
            **more,
        )

    if request.form.get("confirmed") != "yes":
        return check_step()
    justification = form.justification.data
    if verdict.needs_justification and not justification:
        form.justification.errors = [str(request_services.JustificationNeeded())]
        return check_step(422)
    try:
        req = _submit_once(
            form,
            lambda: request_services.submit_edit(
                product, data, current_user, form.key, justification=justification, ends_on=ends_on
            ),
        )
    except request_services.TooManySubmissions as exc:
        # The change as it was checked, ready to be sent again later.
        return check_step(429, refusal=str(exc))
    except request_services.RequestError as exc:
        db.session.rollback()
        return _refused(product, exc)
    if req.is_auto_approved:
        message = f"Your change to {product.name} was approved automatically and is being applied."
    else:
        message = f"Your change to {product.name} is with the super admins for review."
    return _sent(req, message)


def _ends_on(form):
    """The end day the form sent: a day, None (the field emptied: no end), or ``KEEP`` when
    the form left the field out (a script), which keeps the open increase's day."""
    return form.ends_on.data if "ends_on" in request.form else temporary.KEEP


@bp.post("/products/<plate>/change/preview")
@roles_required(*REQUESTERS)
@validates_its_form
def change_preview(plate: str):
    """While the form is filled in: the changes so far and the path they would take."""
    product = _requestable(plate)
    form = ChangeForm(user=current_user, product=product)
    if not form.validate():
        return render_template("asking/_change_summary.html", invalid=True)
    ends_on = _ends_on(form)
    before, after, changes, verdict = request_services.preview_edit(
        product, form.to_data(), ends_on
    )
    return render_template(
        "asking/_change_summary.html",
        ends_on=temporary.resolve(temporary.open_for(product.id), ends_on),
        changes=changes,
        verdict=verdict,
        quotas_before=before["namespaces"],
        quotas_after=after["namespaces"],
    )


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
    running = usage.running(product.licence_plate, product.cluster_name)
    if request.method == "GET":
        return render_template("asking/delete.html", form=form, product=product, running=running)
    if not form.validate_on_submit():
        if form.reason.errors:
            return render(
                "asking/delete.html", status=422, form=form, product=product, running=running
            )
        abort(400)
    try:
        req = _submit_once(
            form,
            lambda: request_services.submit_delete(
                product, current_user, form.confirmation.data, form.key, form.reason.data
            ),
        )
    except request_services.ConfirmationMismatch as exc:
        db.session.rollback()
        return render(
            "asking/delete.html",
            status=422, form=form, product=product, running=running, error=str(exc),
        )  # fmt: skip
    except request_services.ReasonNeeded as exc:
        db.session.rollback()
        form.reason.errors = [str(exc)]
        return render("asking/delete.html", status=422, form=form, product=product, running=running)
    except request_services.TooManySubmissions as exc:
        return render(
            "asking/delete.html",
            status=429, form=form, product=product, running=running, refusal=str(exc),
        )  # fmt: skip
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
        return render_template("asking/new.html", **context)
    if _step() == "edit":
        return _form_page("asking/new.html", form, product=product, last=last, back=True)
    if not form.validate_on_submit():
        return render("asking/new.html", block="form", status=422, **context)
    if _step() == "review":
        return _form_page("asking/new.html", form, product=product, last=last, review=True)
    try:
        req = _submit_once(
            form,
            lambda: request_services.submit_again(product, form.to_data(), current_user, form.key),
        )
    except request_services.TooManySubmissions as exc:
        return _form_page(
            "asking/new.html", form, status=429, product=product, last=last, refusal=str(exc)
        )
    except request_services.RequestError as exc:
        db.session.rollback()
        return _refused(product, exc)
    return _sent(
        req,
        f"Your new request for {req.product.name} ({req.product.licence_plate}) is with the "
        "super admins for review.",
    )
