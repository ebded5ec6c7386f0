"""Right-sizing: quotas a product does not use, offered back. Every ``RIGHTSIZE_EVERY_DAYS``
(:mod:`registry.capacity.scheduler`) each cluster's Prometheus is asked, in one query per
resource, for the peak CPU and memory of every namespace over ``RIGHTSIZE_WINDOW_DAYS``. A
namespace whose peak stays under ``RIGHTSIZE_SHARE`` of its quota is offered the smallest
option its peak would use at most ``RIGHTSIZE_TARGET_SHARE`` of. The team sees the offer on the
product page and by email; "Apply this saving" asks for that decrease (applied without review,
as every decrease), "Not now" silences the product for ``RIGHTSIZE_SILENCE_DAYS``.

Products with an open request or an open temporary increase are left alone; an offer the next
check no longer makes (the quotas or the use changed) is withdrawn.
"""

import dataclasses
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..notifications import services as notifications
from ..products import services as product_services
from ..products.models import Product, ProductStatus
from ..reference import quotas
from ..reference import services as reference
from ..requests import services as request_services
from ..requests.changes import QUOTA_LABELS
from ..requests.models import ACTIVE_STATUSES, Request, TemporaryIncrease
from ..timeutil import utcnow
from ..usage import namespaces as usage
from ..usage.prometheus import Unavailable
from .models import OfferState, SavingOffer

log = logging.getLogger(__name__)

RESOURCES = ("cpu", "memory")
# Every product namespace of the cluster, in one query per resource.
EVERY_NAMESPACE = ".+-(tools|dev|test|prod)"
# A weekly question over a whole cluster may take longer than a page's.
TIMEOUT_SECONDS = 30.0


def peaks(cluster: str, days: int) -> dict[str, dict[str, float]]:
    """namespace -> resource -> peak over ``days`` (cores or GiB), for every product namespace
    on ``cluster``. Raises :class:`Unavailable`."""
    source = usage.source_for(cluster)
    if source is None:
        raise Unavailable(f"no Prometheus is set for the {cluster} cluster")
    source = dataclasses.replace(source, timeout=TIMEOUT_SECONDS)
    found: dict[str, dict[str, float]] = {}
    for resource, expression in (("cpu", usage.CPU), ("memory", usage.MEMORY)):
        over = expression.format(ns=EVERY_NAMESPACE, rate=usage.STEP)
        for labels, value in source.query(f"max_over_time(({over})[{days}d:{usage.STEP}])"):
            scale = 1 if resource == "cpu" else usage.GIB
            found.setdefault(labels.get("namespace", ""), {})[resource] = value / scale
    return found


@dataclass(frozen=True)
class Line:
    """One quota of an offer, in words for the page and the email."""

    label: str
    now: str
    peak: str
    offered: str


def lines(offer: SavingOffer) -> list[Line]:
    found = []
    for field, p in offer.proposal.items():
        _, env, kind = field.split(".")
        unit = "cores" if kind == "cpu" else "GiB"
        found.append(
            Line(
                f"{env} {QUOTA_LABELS[kind]}",
                quotas.describe(p["from"]),
                f"{p['peak']:.2f} {unit}",
                quotas.describe(p["to"]),
            )
        )
    return found


def proposal_for(live: dict[str, dict[str, str]], plate: str, measured, config, options):
    """field -> {"from", "to", "peak", "quota"} for each quota of ``live`` whose peak stays
    under the share; {} if none."""
    share, target = float(config["RIGHTSIZE_SHARE"]), float(config["RIGHTSIZE_TARGET_SHARE"])
    found = {}
    for env, kinds in live.items():
        figures = measured.get(f"{plate}-{env}")
        if not figures:
            continue  # nothing measured: nothing known to be idle
        for kind in RESOURCES:
            current = kinds.get(kind)
            peak = figures.get(kind)
            if current is None or peak is None:
                continue
            requested = quotas.size(current)[0]
            if requested <= 0 or peak >= share * requested:
                continue
            smaller = [
                o.name
                for o in options[kind]
                if quotas.size(o.name) < quotas.size(current)
                and quotas.size(o.name)[0] * target >= peak
            ]
            if not smaller:
                continue
            best = min(smaller, key=quotas.size)
            found[f"namespaces.{env}.{kind}"] = {
                "from": current,
                "to": best,
                "peak": round(peak, 4),
                "quota": requested,
            }
    return found


def saving_of(live: dict, proposal: dict, prices: dict) -> float:
    after = {env: dict(kinds) for env, kinds in live.items()}
    for field, p in proposal.items():
        _, env, kind = field.split(".")
        after[env][kind] = p["to"]
    return quotas.monthly_cost(live, prices) - quotas.monthly_cost(after, prices)


def check(now: datetime | None = None) -> dict[str, int]:
    """Offer each idle product a smaller quota, withdraw the offers no longer true. Returns how
    many offers were made and withdrawn; a cluster whose Prometheus cannot be read is skipped
    (its offers stay as they are)."""
    now = now or utcnow()
    config = current_app.config
    days = int(config["RIGHTSIZE_WINDOW_DAYS"])
    options = reference.quota_options_by_kind()
    done = {"offered": 0, "withdrawn": 0, "clusters_unread": 0}
    for cluster in config["USAGE_PROMETHEUS_URLS"]:
        try:
            measured = peaks(cluster, days)
        except Unavailable as exc:
            log.warning("Right-sizing skipped %s: %s", cluster, exc)
            done["clusters_unread"] += 1
            continue
        for product in _candidates(cluster, now):
            outcome = _offer(product, measured, options, now, days)
            if outcome:
                done[outcome] += 1
            db.session.commit()
    return done


def _candidates(cluster: str, now: datetime) -> list[Product]:
    """Active products on ``cluster`` with no open request, no open temporary increase and no
    silenced offer."""
    busy = select(Request.product_id).where(Request.status.in_([s.value for s in ACTIVE_STATUSES]))
    temporary = select(TemporaryIncrease.product_id).where(TemporaryIncrease.outcome.is_(None))
    silenced = select(SavingOffer.product_id).where(SavingOffer.silenced_until > now)
    return db.session.scalars(
        select(Product)
        .where(
            Product.cluster_name == cluster,
            Product.status == ProductStatus.ACTIVE.value,
            Product.id.not_in(busy),
            Product.id.not_in(temporary),
            Product.id.not_in(silenced),
        )
        .options(selectinload(Product.namespaces), selectinload(Product.contacts))
        .order_by(Product.id)
    ).all()


def open_offer(product_id: int) -> SavingOffer | None:
    return db.session.scalar(
        select(SavingOffer).where(
            SavingOffer.product_id == product_id, SavingOffer.state == OfferState.OFFERED.value
        )
    )


def _offer(product: Product, measured, options, now: datetime, days: int) -> str | None:
    live = product.live_quotas
    proposal = proposal_for(live, product.licence_plate, measured, current_app.config, options)
    current = open_offer(product.id)
    if current is not None:
        if proposal and {f: p["to"] for f, p in proposal.items()} == {
            f: p["to"] for f, p in current.proposal.items()
        }:
            return None  # the same offer stands
        current.state, current.answered_at = OfferState.WITHDRAWN.value, now
        db.session.flush()
        if not proposal:
            return "withdrawn"
    if not proposal:
        return None
    prices = current_app.config["COST_PER_MONTH"] or {}
    offer = SavingOffer(
        product=product,
        proposal=proposal,
        monthly_saving=round(saving_of(live, proposal, prices), 2),
        window_days=days,
        state=OfferState.OFFERED.value,
        created_at=now,
    )
    db.session.add(offer)
    db.session.flush()
    notifications.enqueue(
        "saving_offer",
        product.contact_emails,
        None,
        product=product,
        offer=offer,
        lines=lines(offer),
        saving=_money(offer.monthly_saving),
        product_url=notifications.public_url("products.detail", plate=product.licence_plate)
        + "#saving",
    )
    return "offered"


def _money(amount: float) -> str:
    config = current_app.config
    return f"{config['COST_CURRENCY']} {amount:,.2f} a month" if config["COST_PER_MONTH"] else ""


class OfferGone(request_services.RequestError):
    def __init__(self):
        super().__init__("This offer was already answered or withdrawn; nothing was changed.")


def _open(offer_id: int, product: Product) -> SavingOffer:
    offer = db.session.scalar(
        select(SavingOffer)
        .where(SavingOffer.id == offer_id, SavingOffer.product_id == product.id)
        .with_for_update()
    )
    if offer is None or offer.state != OfferState.OFFERED.value:
        raise OfferGone()
    return offer


def apply(offer_id: int, product: Product, person, submission_key: str | None = None) -> Request:
    """The team accepts: a decrease to the offered quotas, asked in ``person``'s name (applied
    without review, as every decrease). Raises ``OfferGone`` or the request's own errors."""
    offer = _open(offer_id, product)
    data = product_services.ProductData.from_dict(product_services.live_data(product))
    for field, p in offer.proposal.items():
        _, env, kind = field.split(".")
        data.quotas[env][kind] = p["to"]
    request = request_services.submit_edit(product, data, person, submission_key)
    offer.state, offer.answered_at = OfferState.APPLIED.value, utcnow()
    offer.answered_by_id, offer.request_id = person.id, request.id
    return request


def dismiss(offer_id: int, product: Product, person) -> SavingOffer:
    """Not now: the product is not offered a saving again for ``RIGHTSIZE_SILENCE_DAYS``."""
    offer = _open(offer_id, product)
    now = utcnow()
    offer.state, offer.answered_at, offer.answered_by_id = (
        OfferState.DISMISSED.value,
        now,
        person.id,
    )
    offer.silenced_until = now + timedelta(days=int(current_app.config["RIGHTSIZE_SILENCE_DAYS"]))
    return offer


def page_part(product: Product) -> dict:
    """What the product page shows of right-sizing: the open offer and its lines."""
    offer = open_offer(product.id) if product.status == ProductStatus.ACTIVE.value else None
    if offer is None:
        return {"saving": None}
    return {
        "saving": offer,
        "saving_lines": lines(offer),
        "saving_money": _money(offer.monthly_saving),
    }
