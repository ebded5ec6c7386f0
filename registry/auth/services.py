"""Accounts: creating users and changing roles. Services flush; the caller commits."""

from sqlalchemy import select

from ..extensions import db
from .models import Role, User


class AccountError(ValueError):
    pass


def normalise_email(email: str) -> str:
    return email.strip().lower()


def get_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == normalise_email(email)))


def create_user(email: str, name: str, password: str | None, role: Role = Role.USER) -> User:
    """Create an account; refuse a second account for the same address."""
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
    return user


def set_role(email: str, role: Role) -> User:
    """Give an existing account a new role."""
    user = get_by_email(email)
    if user is None:
        raise AccountError(f"No account for {normalise_email(email)}.")
    user.role = Role(role).value
    db.session.flush()
    return user


def authenticate(email: str, password: str) -> User | None:
    user = get_by_email(email)
    if user and user.is_active and user.check_password(password):
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
