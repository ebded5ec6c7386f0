"""Who may do what: the roles, and the check every view makes. A layer below every feature
(the audit log's pages use it, and accounts write to the audit log). Views answer 403 or 404,
never a half-rendered page."""

import enum
from functools import wraps

from flask import abort
from flask_login import current_user, login_required


class Role(enum.StrEnum):
    SUPER_ADMIN = "super_admin"  # reviews and decides requests
    SUPPORT = "support"  # reads everything, changes nothing
    USER = "user"  # product owners, technical leads, requesters

    @property
    def label(self) -> str:
        return {
            "super_admin": "Super admin",
            "support": "Support",
            "user": "Product team",
        }[self]


def roles_required(*roles):
    """Let only signed-in users with one of ``roles`` through; others get 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
