from datetime import date

from flask import Blueprint, abort, current_app, flash, request, url_for
from flask_login import current_user

from ..access import Role, roles_required
from ..extensions import db
from ..htmx import is_htmx, redirect_to, render, render_block
from ..inputs import int_arg, int_args
from ..pagination import page_number
from ..reference import services as reference
from ..reference.models import ENVIRONMENTS, QUOTA_KINDS
from ..usage import clusters as usage_clusters
from ..usage import namespaces as usage_namespaces
from . import queries, temporary
from . import services as request_services

# Review: the super admins' queue of pending requests and their decisions.
bp = Blueprint("review", __name__, url_prefix="/admin")

QUEUE = "review/queue.html"


def _nothing() -> list:
    return []


# What needs a super admin besides decisions (failed requests, those the provisioner is silent
# on): the operations package knows, and wiring connects it here, so requests imports nothing
# from it. Each item has request_id, product_name, licence_plate, status_label, reason, since.
needs_attention = {"find": _nothing}


# What a queue item's template calls: why the signed-in super admin may not decide an item
# (separation of duties), or None. The item shows no quota lists: the grant form, loaded when
# opened, reads the quota options itself.
# And, when usage is on, the cluster's headroom beside a quota increase and what still runs in
# the product's namespaces beside a deletion (each None when it is off).
def _running(req):
    if req.is_final:
        return None
    return usage_namespaces.running(req.product.licence_plate, req.product.cluster_name)


QUEUE_ITEM = {
    "decision_blocker": request_services.decision_blocker,
    "headroom": usage_clusters.headroom,
    "running": _running,
}


def _queue_page(**context):
    page = queries.pending_queue(page_number(), current_app.config["PAGE_SIZE"])
    attention = needs_attention["find"]() if page.page == 1 else []
    return {
        "page": page,
        "pending_count": page.total,
        "errors": {},
        "attention": attention,
        **QUEUE_ITEM,
        **context,
    }


def _granted_quotas() -> dict[str, dict[str, str]] | None:
    """The quotas of "Approve with other quotas", if the form sent them."""
    quotas: dict[str, dict[str, str]] = {}
    for env in ENVIRONMENTS:
        for kind in QUOTA_KINDS:
            value = request.form.get(f"quota-{env}-{kind}")
            if value:
                quotas.setdefault(env, {})[kind] = value
    return quotas or None


def _granted_until():
    """The end day of "Approve with other quotas" (a temporary increase): a day, None (for
    good), or ``KEEP`` (as asked) when the form did not send one."""
    if "ends_on" not in request.form:
        return temporary.KEEP
    text = request.form["ends_on"].strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise request_services.InvalidDecision(
            "Give the day the quotas go back as a date (YYYY-MM-DD)."
        ) from None


@bp.get("/queue")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def queue():
    return render(QUEUE, **_queue_page())


@bp.get("/queue/updates")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def queue_updates():
    """What changed for the items an open queue shows, polled by the page: each one another admin
    decided (or its requester cancelled) is marked with who did what and when, and the count is
    brought up to date. 204 when nothing changed."""
    shown = int_args("ids")[:200]  # ids=1&ids=2 from the page, or ids=1,2
    shown_count = int_arg("count", low=0)
    decided = queries.decided_among(shown)
    count = queries.pending_count()
    if not decided and shown_count == count:
        return "", 204
    # Only ever a fragment (the page's poller asks for it).
    return render_block(
        QUEUE,
        "queue_updates",
        decided=[(req, str(request_services.AlreadyDecided(req))) for req in decided],
        pending_count=count,
    )


@bp.get("/requests/<id:request_id>/grant")
@roles_required(Role.SUPER_ADMIN)
def grant(request_id: int):
    """The form to approve a pending change with other quotas (the queue loads it when opened)."""
    req = queries.get_visible(request_id, current_user)
    if req is None or not req.is_pending or req.type != "edit":
        abort(404)
    return render(
        "review/grant.html",
        block="grant_form",
        req=req,
        quota_options=reference.quota_options_by_kind(),
    )


@bp.get("/requests/<id:request_id>/whole")
@roles_required(Role.SUPER_ADMIN, Role.SUPPORT)
def whole_request(request_id: int):
    """The whole request as asked: the queue loads it when an item's "Whole request" is opened."""
    req = queries.get_visible(request_id, current_user)
    if req is None:
        abort(404)
    return render("review/whole_request.html", block="whole_request", req=req)


@bp.post("/requests/<id:request_id>/decision")
@roles_required(Role.SUPER_ADMIN)
def decide(request_id: int):
    decision = request.form.get("decision")
    if decision not in ("approve", "reject"):
        abort(400, "The decision must be approve or reject.")
    comment = request.form.get("comment", "")
    granted = _granted_quotas()
    try:
        req = request_services.decide(
            request_id,
            current_user,
            decision == "approve",
            comment,
            quotas=granted,
            ends_on=_granted_until(),
        )
        verb = "Approved" if decision == "approve" else "Rejected"
        message = f"{verb} {req.product.name} ({req.product.licence_plate})."
        db.session.commit()
    except LookupError:
        db.session.rollback()
        abort(404)
    except (request_services.AlreadyDecided, request_services.DecidedConcurrently):
        db.session.rollback()
        return _already_decided(request_id)
    except (
        request_services.CommentRequired,
        request_services.InvalidDecision,
        request_services.NotAllowed,
    ) as exc:
        db.session.rollback()
        status = 403 if isinstance(exc, request_services.NotAllowed) else 422
        return _with_error(request_id, str(exc), comment, status, granted)

    if is_htmx():
        return render(
            "review/_decided.html",
            message=message,
            pending_count=queries.pending_count(),
            request_id=request_id,
        )
    flash(message, "success")
    return redirect_to(url_for("review.queue"))


def _already_decided(request_id: int):
    req = queries.get_visible(request_id, current_user)
    message = str(request_services.AlreadyDecided(req))
    if is_htmx():
        return render(
            QUEUE,
            block="decided_elsewhere",
            status=409,
            req=req,
            message=message,
            pending_count=queries.pending_count(),
        )
    flash(message, "error")
    return redirect_to(url_for("review.queue"))


def _with_error(request_id: int, message: str, comment: str, status: int, granted=None):
    """The item again with the error. A refused "approve with other quotas" comes back open with
    the quotas the admin chose and their reason, so nothing they chose is lost or granted
    differently by the next press."""
    grant = {"quotas": granted, "comment": comment} if granted else None
    if grant:
        comment = ""  # the reason belongs to the grant form, not to the rejection's
    options = {"quota_options": reference.quota_options_by_kind()} if grant else {}
    if is_htmx():
        req = queries.get_visible(request_id, current_user)
        return render(
            QUEUE,
            block="queue_item",
            status=status,
            req=req,
            error=message,
            comment=comment,
            grant=grant,
            **options,
            **QUEUE_ITEM,
        )
    context = _queue_page(
        errors={request_id: message},
        comments={request_id: comment},
        grants={request_id: grant} if grant else {},
        **options,
    )
    return render(QUEUE, status=status, **context)


# Its command, registered on this blueprint (it needs the blueprint, so it comes last).
from . import replay  # noqa: E402, F401
