"""The webhook's part of the product page: set or remove it, and send an event again."""

from flask import abort, flash, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from ..access import Role, roles_required
from ..extensions import db
from ..htmx import redirect_to
from ..products import queries as product_queries
from . import bp, services
from .models import Webhook, WebhookDelivery

TEAM = (Role.USER, Role.SUPER_ADMIN)


def _product(plate: str):
    product = product_queries.get_visible(plate, current_user)
    if product is None:
        abort(404)
    return product


def _back(product):
    return redirect_to(url_for("products.detail", plate=product.licence_plate, _anchor="webhook"))


@bp.post("/products/<plate>/webhook")
@roles_required(*TEAM)
def save(plate: str):
    product = _product(plate)
    try:
        hook, secret = services.save(product, request.form.get("url", ""), current_user)
        db.session.commit()
    except services.WebhookError as exc:
        db.session.rollback()
        flash(str(exc), "error")
        return _back(product)
    if secret is None:
        flash(f"Events now go to {hook.url}; the secret is the same.", "success")
        return _back(product)
    # The secret, this once: not flashed, it would sit in the session cookie.
    return render_template("webhooks/made.html", product=product, hook=hook, secret=secret)


@bp.post("/products/<plate>/webhook/remove")
@roles_required(*TEAM)
def remove(plate: str):
    product = _product(plate)
    try:
        services.remove(product, current_user)
        db.session.commit()
        flash("The webhook is removed: no more events are sent.", "success")
    except services.WebhookError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return _back(product)


@bp.post("/products/<plate>/webhook/deliveries/<id:delivery_id>/send-again")
@roles_required(*TEAM)
def send_again(plate: str, delivery_id: int):
    product = _product(plate)
    delivery = db.session.scalar(
        select(WebhookDelivery)
        .join(Webhook)
        .where(WebhookDelivery.id == delivery_id, Webhook.product_id == product.id)
    )
    if delivery is None:
        abort(404)
    try:
        services.send_again(delivery)
        db.session.commit()
        flash(f"“{delivery.event_type}” is sent again.", "success")
    except services.WebhookError as exc:
        db.session.rollback()
        flash(str(exc), "error")
    return _back(product)


def product_part(product) -> dict:
    """The product page's webhook and its latest deliveries (wiring adds it to the page)."""
    hook = services.webhook_of(product.id)
    return {
        "webhook": hook if hook is not None and hook.active else None,
        "webhook_deliveries": services.deliveries(product.id) if hook is not None else [],
    }
