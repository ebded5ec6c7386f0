"""Accounts: creating users, changing roles, signing in. Services flush; the caller commits."""

from functools import lru_cache

from flask import current_app, has_app_context
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from werkzeug.security import check_password_hash, generate_password_hash

from ..audit import services as audit
from ..extensions import db
from . import signals
from .models import REGISTRY_EMAIL, Role, User


class AccountError(ValueError):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


def get_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(email: str, name: str, password: str | None, role: Role = Role.USER) -> User:
    """Create an account; refuse a second account for the same address.

    The email must be one the caller has verified (an administrator making the account, or the
    identity provider's verified claim): the products that name it as a contact become the
    account's here."""
    email = normalise_email(email)
    if not email or "@" not in email:
        raise AccountError(f"{email!r} is not an email address.")
    if get_by_email(email):
        raise AccountError(f"An account for {email} already exists.")
    user = User(email=email, name=name.strip() or email, role=Role(role).value)
    if password:
        user.set_password(password)
    db.session.add(user)
    db.session.flush()
    _link_contacts(user)
    return user


def change_email(user: User, email: str, *, why: str = "") -> bool:
    """Give ``user`` a new, verified email; audited. True if it changed.

    The products they are a contact of stay theirs (access follows the account, not the
    address); contacts that name the new address and no account yet become theirs. Refused if
    another account has the address."""
    email = normalise_email(email)
    if not email or "@" not in email:
        raise AccountError(f"{email!r} is not an email address.")
    if user.email == email:
        return False
    if get_by_email(email) is not None:
        raise AccountError(f"Another account has {email}.")
    before = user.email
    user.email = email
    audit.record("email_changed", target=email, detail=f"{before} → {email} {why}".strip())
    db.session.flush()
    _link_contacts(user)
    return True


def _link_contacts(user: User) -> None:
    signals.email_verified.send(user)


def change_role(user: User, role: Role, *, why: str = "") -> bool:
    """Give ``user`` ``role``; a change ends their sessions and is audited. True if it changed."""
    role = Role(role)
    if user.role == role.value:
        return False
    before = user.role
    user.role = role.value
    user.end_sessions()
    audit.record("role_changed", target=user.email, detail=f"{before} → {role.value} {why}".strip())
    db.session.flush()
    return True


def set_role(email: str, role: Role) -> User:
    """Give an existing account a new role."""
    user = get_by_email(email)
    if user is None:
        raise AccountError(f"No account for {normalise_email(email)}.")
    change_role(user, role, why="(command line)")
    return user


def set_active(email: str, active: bool) -> User:
    """Deactivate (every session ends, no sign-in) or reactivate an account."""
    user = get_by_email(email)
    if user is None:
        raise AccountError(f"No account for {normalise_email(email)}.")
    if user.active != active:
        user.active = active
        user.end_sessions()
        audit.record("user_reactivated" if active else "user_deactivated", target=user.email)
    db.session.flush()
    return user


@lru_cache(maxsize=4)
def _decoy_hash(method: str) -> str:
    return generate_password_hash("not a password of anyone's", method=method)


def authenticate(email: str, password: str) -> User | None:
    """The active user with this email and password, or None.

    Every refusal costs one password hash, as a success does: how long the answer takes does
    not tell whether an account exists, has a password, or is deactivated.
    """
    user = get_by_email(email)
    if user is not None and user.password_hash:
        matches = check_password_hash(user.password_hash, password)
    else:
        method = current_app.config["PASSWORD_HASH_METHOD"] if has_app_context() else "scrypt"
        check_password_hash(_decoy_hash(method), password)
        matches = False
    if user is not None and user.is_active and matches:
        return user
    return None


def super_admin_emails() -> list[str]:
    return list(
        db.session.scalars(
            select(User.email)
            .where(User.role == Role.SUPER_ADMIN.value, User.active.is_(True))
            .order_by(User.email)
        )
    )


def registry_account() -> User:
    """The account the registry asks in its own name with (made on first use): disabled, so it
    never signs in, and left out of every email."""
    user = get_by_email(REGISTRY_EMAIL)
    if user is not None:
        return user
    try:
        with db.session.begin_nested():
            user = User(email=REGISTRY_EMAIL, name="Product Registry", active=False)
            db.session.add(user)
    except IntegrityError:  # another process made it first
        user = get_by_email(REGISTRY_EMAIL)
    return user
