"""Writing to the audit log. ``record`` adds a row to the caller's transaction: the event is
kept exactly when what it describes is committed."""

from flask import has_request_context, request
from flask_login import current_user

from ..extensions import db
from .models import AuditEvent

# The actions written, and how the audit page names them.
ACTIONS = {
    "sign_in": "Signed in",
    "sign_in_failed": "Sign-in refused",
    "sign_out": "Signed out",
    "session_ended": "Session ended by the identity provider",
    "user_created": "Account created",
    "role_changed": "Role changed",
    "email_changed": "Email changed",
    "user_deactivated": "Account deactivated",
    "user_reactivated": "Account reactivated",
    "service_account_created": "Service account created",
    "service_account_revoked": "Service account revoked",
    "api_token_created": "API token made",
    "api_token_revoked": "API token revoked",
    "webhook_set": "Webhook set",
    "webhook_removed": "Webhook removed",
    "decision": "Decided a request",
    "usage_judged": "Usage judged a quota increase",
    "resend": "Re-sent to the provisioner",
    "mail_retry": "Retried an email",
    "dead_letter_replayed": "Replayed a dead letter",
    "dead_letter_discarded": "Discarded a dead letter",
}


def record(action: str, *, target: str = "", detail: str = "", actor=None, actor_label=None):
    """Add one audit event. ``actor`` defaults to the signed-in user; ``actor_label`` names an
    actor that is no user (a service account, the command line, a failed sign-in's email)."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    if actor is None and has_request_context() and current_user.is_authenticated:
        actor = current_user
    event = AuditEvent(
        action=action,
        actor_id=actor.id if actor is not None else None,
        actor=(actor_label or (actor.email if actor is not None else "cli"))[:254],
        target=target[:254],
        detail=detail[:4000],
        address=(request.remote_addr or "")[:64] if has_request_context() else "",
    )
    db.session.add(event)
    return event
