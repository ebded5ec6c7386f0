"""Identity: access follows an account, and an account's email is always one it has proved.

A product's contacts are typed by whoever fills the form; anyone may type any address into an
identity provider's profile. So an account is made, or its email changed, only from an email the
provider has verified, and each contact is resolved to an account once: a later account, or a
later claim, with the same string gets nothing. Against a real provider process (see
tests/auth/test_oidc.py)."""

from sqlalchemy import select

from registry.audit.models import AuditEvent
from registry.auth import services as accounts
from registry.auth.models import Role, User
from registry.extensions import db
from registry.products.models import ProductContact
from registry.products.services import ContactData
from tests import builders
from tests.auth.test_oidc import sso_sign_in
from tests.conftest import OIDC_PEOPLE

NINA = "nina.new@example.gov"
# Someone at the provider who typed Nina's address into their own profile.
MALLORY = {
    "sub": "mallory-5e1d",
    "email": NINA,
    "email_verified": False,
    "name": "Mallory",
    "roles": [],
}


def ninas_product(owner):
    """A product that names Nina, who has no account yet, as its primary technical lead."""
    return builders.submit(owner, primary_lead=ContactData("Nina", "New", NINA)).product


def audit_actions() -> list[str]:
    actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    db.session.rollback()
    return actions


def test_an_unverified_email_claim_makes_no_account_and_reaches_no_product(
    oidc_app, client, owner, oidc_provider
):
    product = ninas_product(owner)
    oidc_provider.set_claims(MALLORY)

    response, _ = sso_sign_in(client, MALLORY)

    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert "has not verified nina.new@example.gov" in client.get("/login").get_data(as_text=True)
    assert db.session.scalar(select(User).where(User.email == NINA)) is None
    assert client.get(f"/products/{product.licence_plate}").status_code == 302  # signed out
    assert audit_actions()[-1] == "sign_in_failed"


def test_a_verified_claim_makes_the_account_that_the_contact_resolves_to(
    oidc_app, client, owner, oidc_provider
):
    product = ninas_product(owner)
    nina = {**MALLORY, "sub": "nina-77c0", "email_verified": True, "name": "Nina New"}
    oidc_provider.set_claims(nina)

    sso_sign_in(client, nina)

    user = db.session.scalar(select(User).where(User.email == NINA))
    contact = db.session.scalar(select(ProductContact).where(ProductContact.email == NINA))
    assert contact.user_id == user.id
    page = client.get(f"/products/{product.licence_plate}")
    assert page.status_code == 200 and product.name in page.get_data(as_text=True)


def test_an_unverified_claim_never_changes_an_accounts_email(
    oidc_app, client, owner, oidc_provider
):
    tom = OIDC_PEOPLE["tom"]
    sso_sign_in(client, tom)
    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})
    product = ninas_product(owner)

    # Tom, signed in by his subject, now claims Nina's address without the provider's word.
    oidc_provider.set_claims({**tom, "email": NINA, "email_verified": False})
    sso_sign_in(client, tom)

    user = db.session.scalar(select(User).where(User.external_subject == tom["sub"]))
    assert user.email == tom["email"]
    assert client.get(f"/products/{product.licence_plate}").status_code == 404
    assert "email_changed" not in audit_actions()


def test_a_verified_change_of_address_is_audited_and_keeps_the_accounts_products(
    oidc_app, client, owner, oidc_provider
):
    tom = OIDC_PEOPLE["tom"]
    sso_sign_in(client, tom)
    toms = builders.submit(owner, owner=ContactData("Tom", "Team", tom["email"])).product
    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})

    moved = {**tom, "email": "tom.moved@example.gov"}
    oidc_provider.set_claims(moved)
    sso_sign_in(client, moved)

    user = db.session.scalar(select(User).where(User.external_subject == tom["sub"]))
    assert user.email == "tom.moved@example.gov"
    change = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "email_changed"))
    assert change.target == "tom.moved@example.gov"
    assert "tom.team@example.gov → tom.moved@example.gov" in change.detail
    # The contact still reads Tom's old address, but it is Tom's account that it names.
    assert client.get(f"/products/{toms.licence_plate}").status_code == 200


def test_a_contact_is_resolved_once_so_a_later_account_with_its_old_address_gets_nothing(
    client, owner
):
    lee = builders.make_user(Role.USER, email="lee@example.com")
    product = builders.submit(owner, owner=ContactData("Lee", "Park", "lee@example.com")).product
    accounts.change_email(lee, "lee.park@example.com")
    db.session.commit()

    # Someone is given an account with the address the contact was typed with.
    newcomer = builders.make_user(Role.USER, email="lee@example.com")

    builders.login(client, newcomer)
    assert client.get(f"/products/{product.licence_plate}").status_code == 404
    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})
    builders.login(client, lee)
    assert client.get(f"/products/{product.licence_plate}").status_code == 200
