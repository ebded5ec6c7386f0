"""Licence plates: six lowercase hex characters, a letter first, random, unique forever."""

import re

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from registry.extensions import db
from registry.products import plates, services
from registry.products.models import Product, ProductContact, ProductNamespace
from registry.requests import services as request_services
from tests import builders

PLATE = re.compile(r"[a-f][0-9a-f]{5}")
HEX = set("0123456789abcdef")


def plates_from(*values):
    """A ``generate_plate`` that hands out ``values`` in order and records each draw."""
    remaining = iter(values)
    drawn: list[str] = []

    def generate() -> str:
        plate = next(remaining)
        drawn.append(plate)
        return plate

    generate.drawn = drawn
    return generate


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def stored_plates() -> list[str]:
    db.session.rollback()  # read what is committed, not what this session remembers
    return sorted(db.session.scalars(select(Product.licence_plate)))


def product_row(plate: str, user, status: str = "requested") -> Product:
    return Product(
        licence_plate=plate,
        name="Direct",
        description="Inserted without the service.",
        ministry_code="CITZ",
        cluster_name="silver",
        created_by_id=user.id,
        status=status,
    )


def test_random_plates_are_six_hex_characters_with_a_letter_first():
    drawn = [plates.random_plate() for _ in range(2000)]

    assert [p for p in drawn if not PLATE.fullmatch(p)] == []
    # Every leading letter is drawn, and every hex digit in the other five places.
    assert {p[0] for p in drawn} == set("abcdef")
    assert {c for p in drawn for c in p[1:]} == HEX
    # Random, not a short cycle: 6 * 16**5 plates, so 2000 draws barely ever repeat.
    assert len(set(drawn)) > 1990


@pytest.mark.parametrize("value", ["a00000", "fedcba", "b1c2d3"])
def test_is_plate_accepts_a_plate(value):
    assert plates.is_plate(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "0abcde",
        "9fffff",
        "gabcde",
        "Abcdef",
        "abcdeF",
        "abcde",
        "abcdef0",
        "abcdef\n",
        " abcde",
    ],
    ids=repr,
)
def test_is_plate_refuses_anything_else(value):
    assert not plates.is_plate(value)


def test_a_plate_already_taken_is_drawn_again(app, owner):
    services.create_product(builders.product_data(), owner, generate_plate=plates_from("aaaaaa"))
    db.session.commit()
    generate = plates_from("aaaaaa", "bbbbbb")

    product = services.create_product(builders.product_data(), owner, generate_plate=generate)
    db.session.commit()

    assert generate.drawn == ["aaaaaa", "bbbbbb"]
    assert product.licence_plate == "bbbbbb"
    assert stored_plates() == ["aaaaaa", "bbbbbb"]


def test_a_draw_that_is_not_a_plate_is_drawn_again(app, owner):
    generate = plates_from("0abcde", "ABCDEF", "abcde", "abcdef\n", "cccccc")

    product = services.create_product(builders.product_data(), owner, generate_plate=generate)
    db.session.commit()

    assert product.licence_plate == "cccccc"
    assert stored_plates() == ["cccccc"]


def test_only_taken_plates_raise_plate_exhausted(app, owner):
    services.create_product(builders.product_data(), owner, generate_plate=plates_from("aaaaaa"))
    db.session.commit()
    draws = []

    def always_taken() -> str:
        draws.append("aaaaaa")
        return "aaaaaa"

    with pytest.raises(services.PlateExhausted):
        services.create_product(builders.product_data(), owner, generate_plate=always_taken)

    # It gives up after a bounded number of draws and adds nothing.
    assert len(draws) == services.PLATE_ATTEMPTS
    assert stored_plates() == ["aaaaaa"]
    assert count(ProductNamespace) == 4
    assert count(ProductContact) == 2


def test_a_plate_taken_between_check_and_insert_is_drawn_again(app, owner, monkeypatch):
    """Another request inserted the same plate after our check: the insert does nothing,
    the rest of the transaction is untouched, and a new plate is drawn."""
    services.create_product(builders.product_data(), owner, generate_plate=plates_from("aaaaaa"))
    db.session.commit()
    earlier_work = builders.product_data(name="Earlier in the same transaction")
    services.create_product(earlier_work, owner, generate_plate=plates_from("dddddd"))
    real_plate_taken = services._plate_taken
    checks = []

    def first_check_is_stale(plate):
        checks.append(plate)
        return False if len(checks) == 1 else real_plate_taken(plate)

    monkeypatch.setattr(services, "_plate_taken", first_check_is_stale)
    generate = plates_from("aaaaaa", "bbbbbb")

    product = services.create_product(builders.product_data(), owner, generate_plate=generate)
    db.session.commit()

    assert product.licence_plate == "bbbbbb"
    assert generate.drawn == ["aaaaaa", "bbbbbb"]
    assert stored_plates() == ["aaaaaa", "bbbbbb", "dddddd"]
    # The failed insert left no contacts or namespaces behind.
    assert count(ProductNamespace) == 3 * 4
    assert count(ProductContact) == 3 * 2


def test_an_integrity_error_other_than_the_plate_is_not_swallowed(app, owner):
    generate = plates_from("aaaaaa", "bbbbbb")

    with pytest.raises(IntegrityError):
        services.create_product(
            builders.product_data(ministry_code="NOPE"), owner, generate_plate=generate
        )

    assert generate.drawn == ["aaaaaa"]
    assert stored_plates() == []


@pytest.mark.parametrize("first_status", ["requested", "active", "deleted"])
def test_the_database_refuses_a_second_product_with_the_same_plate(app, owner, first_status):
    db.session.add(product_row("abc123", owner, status=first_status))
    db.session.commit()

    db.session.add(product_row("abc123", owner))
    with pytest.raises(IntegrityError):
        db.session.flush()

    assert stored_plates() == ["abc123"]


@pytest.mark.parametrize("ending", ["cancelled", "rejected"])
def test_the_plate_of_a_cancelled_or_rejected_product_is_never_reused(app, owner, admin, ending):
    request = builders.submit(owner)
    request_id, product_id = request.id, request.product_id
    if ending == "cancelled":
        request_services.cancel(request_id, owner)
    else:
        request_services.decide(request_id, admin, approve=False, comment="Not this one.")
    db.session.commit()
    gone = db.session.get(Product, product_id)
    assert gone.status == "not_created"
    plate = gone.licence_plate
    fresh = "a00000" if plate != "a00000" else "a00001"
    generate = plates_from(plate, fresh)

    product = services.create_product(builders.product_data(), owner, generate_plate=generate)
    db.session.commit()

    assert generate.drawn == [plate, fresh]
    assert product.licence_plate == fresh
    assert stored_plates() == sorted([plate, fresh])


def test_create_product_only_flushes_so_a_rollback_leaves_nothing(app, owner):
    services.create_product(builders.product_data(), owner, generate_plate=plates_from("eeeeee"))
    db.session.rollback()

    assert stored_plates() == []
