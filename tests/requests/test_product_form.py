"""The new product form: every rule with its own message, nothing stored when it refuses, the
product, its contacts, namespaces and pending request stored when it accepts, and the inline
validation endpoint HTMX calls field by field."""

import html
import re
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from registry.auth.models import Role
from registry.extensions import db
from registry.outbox.models import OutboxEmail
from registry.products import plates
from registry.products.models import Product, ProductContact, ProductNamespace
from registry.reference.models import QUOTA_KINDS
from registry.requests.models import Request, RequestEvent
from tests import builders

NEW = "/products/new"
VALIDATE = "/products/new/validate"

STORED_TABLES = (Product, ProductContact, ProductNamespace, Request, RequestEvent, OutboxEmail)
NOTHING_STORED = {model.__tablename__: 0 for model in STORED_TABLES}

# Leave a field out of the POST body altogether (a hand-made request, not a browser).
DROP = object()

# The messages, exactly as the product team reads them.
NAME_REQUIRED = "Product name is required."
NAME_TOO_LONG = "Product name must be 40 characters or fewer."
NAME_LETTER = "Product name must start with a letter."
NAME_CONTROL = "Product name cannot contain line breaks or control characters."
DESCRIPTION_REQUIRED = "Description is required."
DESCRIPTION_TOO_LONG = "Description must be 512 characters or fewer."
DESCRIPTION_CONTROL = "Description cannot contain control characters."
NAME_NUL = (
    "Product name held a character the registry cannot store (NUL); it was taken out: check "
    "the text and send it again."
)
DESCRIPTION_NUL = NAME_NUL.replace("Product name", "Description")
MINISTRY = "Choose a ministry from the list."
CLUSTER = "Choose a cluster from the list."
LAB_CLUSTER = "Only admins can place a product on a lab cluster."
FIRST_NAME_REQUIRED = "First name is required."
LAST_NAME_REQUIRED = "Last name is required."
EMAIL_REQUIRED = "Email is required."
BAD_EMAIL = "Enter a valid email address, like jane.doe@gov.bc.ca."
LEAD_IS_OWNER = "The primary technical lead must be a different person from the product owner."
SECONDARY_NOT_DIFFERENT = (
    "The secondary technical lead must be a different person from the product owner and the "
    "primary technical lead."
)
REFUSED_BANNER = "Please correct the fields marked below; nothing was saved."

SECONDARY = {
    "secondary_lead-first_name": "Sam",
    "secondary_lead-last_name": "Second",
    "secondary_lead-email": "sam.second@example.com",
}

NAMESPACES = ("tools", "dev", "test", "prod")
LAB_CLUSTERS = ["klab", "klab2", "clab"]
NON_LAB_CLUSTERS = ["silver", "gold", "emerald"]

# The quota options of docs/domain.md, in the order the form offers them.
QUOTA_OPTIONS = {
    "cpu": [
        "cpu-request-0.5-limit-1.5",
        "cpu-request-1-limit-2",
        "cpu-request-2-limit-4",
        "cpu-request-4-limit-8",
        "cpu-request-8-limit-16",
        "cpu-request-16-limit-32",
        "cpu-request-32-limit-64",
    ],
    "memory": [
        "memory-request-2-limit-4",
        "memory-request-4-limit-8",
        "memory-request-8-limit-16",
        "memory-request-16-limit-32",
        "memory-request-32-limit-64",
        "memory-request-64-limit-128",
    ],
    "storage": [
        "storage-1",
        "storage-2",
        "storage-4",
        "storage-16",
        "storage-32",
        "storage-64",
        "storage-128",
        "storage-256",
        "storage-512",
    ],
    "snapshot": ["snapshot-5"],
}


def form(**overrides) -> dict:
    """A valid form body with ``overrides``; a value of ``DROP`` leaves that field out."""
    data = builders.form_data(**{k: v for k, v in overrides.items() if v is not DROP})
    for key, value in overrides.items():
        if value is DROP:
            data.pop(key)
    return data


def stored_rows() -> dict[str, int]:
    """Rows in every table a submission writes to, as committed now."""
    db.session.rollback()  # the test's own session may hold a stale snapshot
    return {
        model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
        for model in STORED_TABLES
    }


FIELD_ERROR = re.compile(
    r'<p class="field-error" id="(?P<name>[\w-]+)-error"[^>]*>(?P<text>.*?)</p>', re.S
)
QUOTA_SELECT = re.compile(
    r'<select[^>]*\bname="(?P<name>(?:tools|dev|test|prod)-\w+)"[^>]*>.*?</select>\s*'
    r'(?P<errors>(?:<p class="field-error">.*?</p>\s*)*)',
    re.S,
)


def field_errors(page: str) -> dict[str, str]:
    """The message shown under each field, by the field's HTML name; fields without one left out."""
    errors = {m["name"]: html.unescape(m["text"]) for m in FIELD_ERROR.finditer(page)}
    for m in QUOTA_SELECT.finditer(page):
        texts = re.findall(r'<p class="field-error">(.*?)</p>', m["errors"], re.S)
        errors[m["name"]] = " ".join(html.unescape(t) for t in texts)
    return {name: text for name, text in errors.items() if text}


def own_fragment(body: str) -> re.Match:
    """The field's own message from an inline validation answer; anything after it must be an
    out-of-band swap (another field's message, the name's warning)."""
    body = body.strip()
    fragment = FIELD_ERROR.match(body)
    assert fragment, body
    rest = body[fragment.end() :]
    tags = re.findall(r"<p\b[^>]*>", rest)
    assert all('hx-swap-oob="true"' in tag for tag in tags), rest
    return fragment


def input_value(page: str, name: str) -> str:
    tag = re.search(rf'<input[^>]*\bname="{re.escape(name)}"[^>]*>', page)
    assert tag, f"no input {name}"
    value = re.search(r'\bvalue="([^"]*)"', tag.group(0))
    return html.unescape(value.group(1)) if value else ""


def textarea_value(page: str, name: str) -> str:
    match = re.search(
        rf'<textarea[^>]*\bname="{re.escape(name)}"[^>]*>(.*?)</textarea>', page, re.S
    )
    assert match, f"no textarea {name}"
    # HTML drops one newline right after <textarea>; WTForms writes one for that reason.
    return html.unescape(match.group(1)).removeprefix("\r\n").removeprefix("\n")


def select_options(page: str, name: str) -> tuple[list[str], list[str]]:
    """(every option's value, the selected ones) of select ``name``."""
    match = re.search(rf'<select[^>]*\bname="{re.escape(name)}"[^>]*>(.*?)</select>', page, re.S)
    assert match, f"no select {name}"
    options = re.findall(r"<option([^>]*)>", match.group(1))
    values = [html.unescape(re.search(r'value="([^"]*)"', o).group(1)) for o in options]
    selected = [v for v, o in zip(values, options, strict=True) if re.search(r"\bselected\b", o)]
    return values, selected


BAD_EMAILS = [
    "not-an-email",
    "jane@",
    "@example.com",
    "jane@example",
    "jane doe@example.com",
    "jane@@example.com",
    "jane@example..com",
    "jane.@example.com",
    "Jane Doe <jane@example.com>",
    "jane@example.com\nbcc: eve@example.com",
]


def _email_cases(role: str, bad: list[str], extra: dict | None = None) -> list:
    return [
        pytest.param(
            {**(extra or {}), f"{role}-email": email},
            {f"{role}-email": BAD_EMAIL},
            id=f"{role}-email-{email!r}",
        )
        for email in bad
    ]


def _contact_required_cases(role: str) -> list:
    return [
        pytest.param({f"{role}-{field}": value}, {f"{role}-{field}": message}, id=f"{role}-{field}")
        for field, value, message in (
            ("first_name", "", FIRST_NAME_REQUIRED),
            ("last_name", "  ", LAST_NAME_REQUIRED),
            ("email", "", EMAIL_REQUIRED),
        )
    ]


def _secondary_partial_cases() -> list:
    cases = []
    for given, value in SECONDARY.items():
        blank = {name: "" for name in SECONDARY if name != given}
        expected = {
            name: {
                "secondary_lead-first_name": FIRST_NAME_REQUIRED,
                "secondary_lead-last_name": LAST_NAME_REQUIRED,
                "secondary_lead-email": EMAIL_REQUIRED,
            }[name]
            for name in blank
        }
        cases.append(
            pytest.param({given: value, **blank}, expected, id=f"secondary-only-{given}"),
        )
    return cases


INVALID = [
    # Name
    pytest.param({"name": ""}, {"name": NAME_REQUIRED}, id="name-empty"),
    pytest.param({"name": "   "}, {"name": NAME_REQUIRED}, id="name-blank"),
    pytest.param({"name": DROP}, {"name": NAME_REQUIRED}, id="name-missing"),
    pytest.param({"name": "N" * 41}, {"name": NAME_TOO_LONG}, id="name-41-chars"),
    pytest.param({"name": "1st Permits"}, {"name": NAME_LETTER}, id="name-digit-first"),
    pytest.param({"name": "-Permits"}, {"name": NAME_LETTER}, id="name-dash-first"),
    pytest.param({"name": "_Permits"}, {"name": NAME_LETTER}, id="name-underscore-first"),
    *[
        pytest.param({"name": f"Fish{char}Game"}, {"name": NAME_CONTROL}, id=f"name-{char!r}")
        for char in ("\n", "\r\n", "\t", "\x1b", "\x7f", "\x85", "\u2028")
    ],
    # A NUL is taken out before the view runs (PostgreSQL cannot store it); the field says so.
    pytest.param({"name": "Fish\x00Game"}, {"name": NAME_NUL}, id="name-nul"),
    # Description
    pytest.param({"description": ""}, {"description": DESCRIPTION_REQUIRED}, id="desc-empty"),
    pytest.param({"description": " \n "}, {"description": DESCRIPTION_REQUIRED}, id="desc-blank"),
    pytest.param({"description": DROP}, {"description": DESCRIPTION_REQUIRED}, id="desc-missing"),
    pytest.param({"description": "d" * 513}, {"description": DESCRIPTION_TOO_LONG}, id="desc-513"),
    pytest.param({"description": "nul\x00"}, {"description": DESCRIPTION_NUL}, id="desc-nul"),
    pytest.param({"description": "a\x07b"}, {"description": DESCRIPTION_CONTROL}, id="desc-bell"),
    # Ministry and cluster
    pytest.param({"ministry": DROP}, {"ministry": MINISTRY}, id="ministry-missing"),
    pytest.param({"ministry": ""}, {"ministry": MINISTRY}, id="ministry-empty"),
    pytest.param({"ministry": "XYZ"}, {"ministry": MINISTRY}, id="ministry-unknown"),
    pytest.param({"ministry": "citz"}, {"ministry": MINISTRY}, id="ministry-wrong-case"),
    pytest.param({"cluster": "mars"}, {"cluster": CLUSTER}, id="cluster-unknown"),
    pytest.param({"cluster": "golddr"}, {"cluster": CLUSTER}, id="cluster-golddr-directly"),
    *[
        pytest.param({"cluster": lab}, {"cluster": LAB_CLUSTER}, id=f"cluster-{lab}-non-admin")
        for lab in LAB_CLUSTERS
    ],
    # Contacts
    *_contact_required_cases("product_owner"),
    *_contact_required_cases("primary_lead"),
    *_email_cases("product_owner", BAD_EMAILS),
    *_email_cases("primary_lead", BAD_EMAILS[:3]),
    *_email_cases("secondary_lead", BAD_EMAILS[-3:], extra=SECONDARY),
    pytest.param(
        {"product_owner-email": "PO@x.com", "primary_lead-email": "po@x.com"},
        {"primary_lead-email": LEAD_IS_OWNER},
        id="lead-is-owner-any-case",
    ),
    *_secondary_partial_cases(),
    pytest.param(
        {
            "product_owner-email": "po@example.com",
            **SECONDARY,
            "secondary_lead-email": "PO@Example.com",
        },
        {"secondary_lead-email": SECONDARY_NOT_DIFFERENT},
        id="secondary-is-owner",
    ),
    pytest.param(
        {
            "primary_lead-email": "tl@example.com",
            **SECONDARY,
            "secondary_lead-email": "TL@example.COM",
        },
        {"secondary_lead-email": SECONDARY_NOT_DIFFERENT},
        id="secondary-is-primary-lead",
    ),
    # Blank owner email with a half-filled secondary lead: only "required" messages, no
    # "different person" one for two empty addresses.
    pytest.param(
        {"product_owner-email": "", "secondary_lead-first_name": "Sam"},
        {
            "product_owner-email": EMAIL_REQUIRED,
            "secondary_lead-last_name": LAST_NAME_REQUIRED,
            "secondary_lead-email": EMAIL_REQUIRED,
        },
        id="secondary-half-filled-owner-email-blank",
    ),
    # Quotas
    pytest.param(
        {"tools-cpu": "cpu-request-3-limit-6"},
        {"tools-cpu": "Choose a cpu quota from the list."},
        id="quota-cpu-unknown",
    ),
    pytest.param(
        {"prod-memory": "cpu-request-1-limit-2"},
        {"prod-memory": "Choose a memory quota from the list."},
        id="quota-cpu-option-as-memory",
    ),
    pytest.param(
        {"dev-storage": "storage-3"},
        {"dev-storage": "Choose a storage quota from the list."},
        id="quota-storage-unknown",
    ),
    pytest.param(
        {"test-snapshot": "snapshot-10"},
        {"test-snapshot": "Choose a snapshot quota from the list."},
        id="quota-snapshot-unknown",
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), INVALID)
def test_invalid_submission_shows_its_message_and_stores_nothing(
    client, owner, overrides, expected
):
    builders.login(client, owner)

    response = builders.post(client, NEW, form(**overrides))

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert field_errors(page) == expected
    assert REFUSED_BANNER in page
    assert stored_rows() == NOTHING_STORED


def test_refused_form_keeps_what_the_user_typed(client, owner):
    builders.login(client, owner)
    typed = form(
        name="1 Fish & Game <Permits>",  # refused: starts with a digit
        description='Permits for "river" <crossings> & more.\nSecond line.',
        ministry="HLTH",
        cluster="gold",
        **{
            "product_owner-first_name": "Zoë",
            "product_owner-last_name": "O'Brien",
            "product_owner-email": "zoe.obrien@example.com",
            "primary_lead-email": "lead.person@example.com",
            **SECONDARY,
            "prod-cpu": "cpu-request-4-limit-8",
            "dev-storage": "storage-64",
        },
    )

    response = builders.post(client, NEW, typed)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert field_errors(page) == {"name": NAME_LETTER}
    assert input_value(page, "name") == "1 Fish & Game <Permits>"
    assert textarea_value(page, "description") == typed["description"]
    for name in (
        "product_owner-first_name",
        "product_owner-last_name",
        "product_owner-email",
        "primary_lead-first_name",
        "primary_lead-last_name",
        "primary_lead-email",
        *SECONDARY,
    ):
        assert input_value(page, name) == typed[name], name
    assert select_options(page, "ministry")[1] == ["HLTH"]
    assert select_options(page, "cluster")[1] == ["gold"]
    assert select_options(page, "prod-cpu")[1] == ["cpu-request-4-limit-8"]
    assert select_options(page, "dev-storage")[1] == ["storage-64"]
    # What was typed comes back escaped, never as markup.
    assert "<Permits>" not in page
    assert "<crossings>" not in page
    assert stored_rows() == NOTHING_STORED


def test_refused_htmx_submission_answers_with_the_form_alone(client, owner):
    builders.login(client, owner)

    response = builders.post(client, NEW, form(description=""), htmx=True)

    assert response.status_code == 422
    body = response.get_data(as_text=True).strip()
    assert body.startswith('<form id="product-form"')
    assert body.endswith("</form>")
    assert field_errors(body) == {"description": DESCRIPTION_REQUIRED}
    assert stored_rows() == NOTHING_STORED


# Valid submissions


def stored_product() -> tuple[Product, dict, dict, Request, list[RequestEvent]]:
    """The one product stored, its namespaces' quotas, its contacts, its request and events."""
    db.session.rollback()
    product = db.session.scalars(select(Product)).one()
    namespaces = {
        ns.environment: ns.quotas()
        for ns in db.session.scalars(
            select(ProductNamespace).where(ProductNamespace.product_id == product.id)
        )
    }
    contacts = {
        c.role: (c.first_name, c.last_name, c.email)
        for c in db.session.scalars(
            select(ProductContact).where(ProductContact.product_id == product.id)
        )
    }
    request = db.session.scalars(select(Request)).one()
    events = list(db.session.scalars(select(RequestEvent).order_by(RequestEvent.id)))
    return product, namespaces, contacts, request, events


def test_valid_submission_stores_product_namespaces_contacts_and_pending_request(client, owner):
    builders.login(client, owner)
    data = form(
        name="  River Permits  ",
        description="Permits for river crossings.",
        ministry="FLNR",
        **{
            "product_owner-first_name": "Pat",
            "product_owner-last_name": "Owner",
            "product_owner-email": "Pat.Owner@Example.COM",
            "primary_lead-first_name": "Tam",
            "primary_lead-last_name": "Lead",
            "primary_lead-email": " TAM.Lead@EXAMPLE.com ",
        },
    )

    response = builders.post(client, NEW, data)

    assert response.status_code == 303, response.get_data(as_text=True)
    product, namespaces, contacts, request, events = stored_product()
    assert plates.is_plate(product.licence_plate)
    assert (
        product.name,
        product.description,
        product.ministry_code,
        product.cluster_name,
        product.status,
        product.created_by_id,
    ) == (
        "River Permits",
        "Permits for river crossings.",
        "FLNR",
        "silver",
        "requested",
        owner.id,
    )
    assert namespaces == {env: builders.DEFAULT_QUOTAS for env in NAMESPACES}
    assert contacts == {
        "owner": ("Pat", "Owner", "pat.owner@example.com"),
        "primary_lead": ("Tam", "Lead", "tam.lead@example.com"),
    }
    assert (
        request.product_id,
        request.type,
        request.status,
        request.requested_by_id,
        request.original_data,
    ) == (product.id, "create", "pending", owner.id, None)
    assert request.requested_data["name"] == "River Permits"
    assert request.requested_data["contacts"]["owner"]["email"] == "pat.owner@example.com"
    assert [(e.request_id, e.from_status, e.to_status, e.actor_id) for e in events] == [
        (request.id, None, "pending", owner.id)
    ]
    assert urlsplit(response.headers["Location"]).path == f"/requests/{request.id}"


def test_chosen_quotas_are_stored_per_namespace(client, owner):
    chosen = {
        "tools": {
            "cpu": "cpu-request-1-limit-2",
            "memory": "memory-request-2-limit-4",
            "storage": "storage-2",
            "snapshot": "snapshot-5",
        },
        "dev": {
            "cpu": "cpu-request-0.5-limit-1.5",
            "memory": "memory-request-8-limit-16",
            "storage": "storage-4",
            "snapshot": "snapshot-5",
        },
        "test": {
            "cpu": "cpu-request-2-limit-4",
            "memory": "memory-request-4-limit-8",
            "storage": "storage-16",
            "snapshot": "snapshot-5",
        },
        "prod": {
            "cpu": "cpu-request-32-limit-64",
            "memory": "memory-request-64-limit-128",
            "storage": "storage-512",
            "snapshot": "snapshot-5",
        },
    }
    builders.login(client, owner)
    fields = {f"{env}-{kind}": option for env, q in chosen.items() for kind, option in q.items()}

    response = builders.post(client, NEW, form(**fields))

    assert response.status_code == 303, response.get_data(as_text=True)
    _, namespaces, _, request, _ = stored_product()
    assert namespaces == chosen
    assert request.requested_data["namespaces"] == chosen


def test_secondary_lead_is_stored_as_a_third_contact(client, owner):
    builders.login(client, owner)
    data = form(
        **{
            "product_owner-email": "po@example.com",
            "primary_lead-email": "tl@example.com",
            "secondary_lead-first_name": " Sam ",
            "secondary_lead-last_name": "Second",
            "secondary_lead-email": "Sam.Second@Example.com",
        }
    )

    response = builders.post(client, NEW, data)

    assert response.status_code == 303, response.get_data(as_text=True)
    _, _, contacts, _, _ = stored_product()
    assert contacts == {
        "owner": ("Pat", "Owner", "po@example.com"),
        "primary_lead": ("Tam", "Lead", "tl@example.com"),
        "secondary_lead": ("Sam", "Second", "sam.second@example.com"),
    }


def test_name_of_40_and_description_of_512_characters_are_accepted(client, owner):
    builders.login(client, owner)
    name, description = "N" + "n" * 39, "d" * 512

    response = builders.post(client, NEW, form(name=name, description=description))

    assert response.status_code == 303, response.get_data(as_text=True)
    product, *_ = stored_product()
    assert (product.name, product.description) == (name, description)


def test_description_may_span_lines(client, owner):
    builders.login(client, owner)
    description = "First line.\r\nSecond line.\n\tIndented third."

    response = builders.post(client, NEW, form(description=description))

    assert response.status_code == 303, response.get_data(as_text=True)
    product, *_ = stored_product()
    assert product.description == description


@pytest.mark.parametrize("cluster", NON_LAB_CLUSTERS)
def test_product_team_may_choose_any_non_lab_cluster(client, owner, cluster):
    builders.login(client, owner)

    response = builders.post(client, NEW, form(cluster=cluster))

    assert response.status_code == 303, response.get_data(as_text=True)
    product, *_ = stored_product()
    assert product.cluster_name == cluster


def test_cluster_left_out_defaults_to_silver(client, owner):
    builders.login(client, owner)

    response = builders.post(client, NEW, form(cluster=DROP))

    assert response.status_code == 303, response.get_data(as_text=True)
    product, *_ = stored_product()
    assert product.cluster_name == "silver"


@pytest.mark.parametrize("cluster", LAB_CLUSTERS)
def test_super_admin_may_place_a_product_on_a_lab_cluster(client, admin, cluster):
    builders.login(client, admin)

    response = builders.post(client, NEW, form(cluster=cluster))

    assert response.status_code == 303, response.get_data(as_text=True)
    product, _, _, request, _ = stored_product()
    assert product.cluster_name == cluster
    assert request.requested_by_id == admin.id


def test_valid_htmx_submission_redirects_through_hx_redirect(client, owner):
    builders.login(client, owner)

    response = builders.post(client, NEW, form(), htmx=True)

    assert response.status_code == 204, response.get_data(as_text=True)
    _, _, _, request, _ = stored_product()
    assert urlsplit(response.headers["HX-Redirect"]).path == f"/requests/{request.id}"


# Inline validation


@pytest.mark.parametrize(
    ("field", "overrides", "message"),
    [
        pytest.param("name", {"name": "N" * 41}, NAME_TOO_LONG, id="name-too-long"),
        pytest.param("name", {"name": "9 lives"}, NAME_LETTER, id="name-digit-first"),
        pytest.param(
            "primary_lead-email",
            {"product_owner-email": "Same@Example.com", "primary_lead-email": "same@example.com"},
            LEAD_IS_OWNER,
            id="lead-is-owner",
        ),
        pytest.param(
            "secondary_lead-email",
            {"primary_lead-email": "tl@example.com", **SECONDARY, "secondary_lead-email": "TL@x"},
            BAD_EMAIL,
            id="secondary-bad-email",
        ),
        pytest.param(
            "secondary_lead-email",
            {
                "primary_lead-email": "tl@example.com",
                **SECONDARY,
                "secondary_lead-email": "tl@EXAMPLE.com",
            },
            SECONDARY_NOT_DIFFERENT,
            id="secondary-is-lead",
        ),
        pytest.param(
            "secondary_lead-last_name",
            {"secondary_lead-first_name": "Sam"},
            LAST_NAME_REQUIRED,
            id="secondary-half-filled",
        ),
        pytest.param("product_owner-email", {"product_owner-email": "jane@"}, BAD_EMAIL, id="po"),
        pytest.param("description", {"description": ""}, DESCRIPTION_REQUIRED, id="description"),
        pytest.param("ministry", {"ministry": "XYZ"}, MINISTRY, id="ministry"),
        pytest.param("cluster", {"cluster": "klab"}, LAB_CLUSTER, id="lab-cluster"),
        pytest.param(
            "dev-memory",
            {"dev-memory": "memory-request-1-limit-1"},
            "Choose a memory quota from the list.",
            id="quota",
        ),
        # Valid fields answer with an empty message, whatever the rest of the form holds.
        pytest.param("name", {"description": ""}, "", id="name-valid-other-field-invalid"),
        pytest.param("primary_lead-email", {}, "", id="lead-email-valid"),
        pytest.param("secondary_lead-email", {}, "", id="secondary-blank-is-valid"),
        pytest.param("cluster", {"cluster": "emerald"}, "", id="cluster-valid"),
    ],
)
def test_inline_validation_answers_for_one_field(client, owner, field, overrides, message):
    builders.login(client, owner)

    response = builders.post(
        client, VALIDATE, form(**overrides), htmx=True, query_string={"field": field}
    )

    assert response.status_code == 200
    fragment = own_fragment(response.get_data(as_text=True))
    assert (fragment["name"], html.unescape(fragment["text"])) == (field, message)
    assert stored_rows() == NOTHING_STORED


def test_inline_validation_of_lab_cluster_passes_for_super_admin(client, admin):
    builders.login(client, admin)

    response = builders.post(
        client, VALIDATE, form(cluster="clab"), htmx=True, query_string={"field": "cluster"}
    )

    assert response.status_code == 200
    fragment = own_fragment(response.get_data(as_text=True))
    assert (fragment["name"], fragment["text"]) == ("cluster", "")


@pytest.mark.parametrize(
    "query", [{"field": "nope"}, {"field": ""}, {"field": "product_owner"}, {}], ids=repr
)
def test_inline_validation_of_an_unknown_field_is_a_bad_request(client, owner, query):
    builders.login(client, owner)

    response = builders.post(client, VALIDATE, form(), htmx=True, query_string=query)

    assert response.status_code == 400
    assert stored_rows() == NOTHING_STORED


def test_inline_validation_of_a_valid_form_stores_nothing(client, owner):
    builders.login(client, owner)

    for field in ("name", "description", "product_owner-email", "tools-cpu"):
        response = builders.post(client, VALIDATE, form(), htmx=True, query_string={"field": field})
        assert response.status_code == 200

    assert stored_rows() == NOTHING_STORED


def test_form_and_inline_validation_need_a_signed_in_user(client):
    assert client.get(NEW).status_code == 302
    response = builders.post(client, VALIDATE, form(), query_string={"field": "name"})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert stored_rows() == NOTHING_STORED


# The empty form


def test_form_offers_four_namespaces_with_default_quotas_preselected(client, owner):
    builders.login(client, owner)

    response = client.get(NEW)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for env in NAMESPACES:
        assert f"<code>&lt;plate&gt;-{env}</code>" in page
        for kind in QUOTA_KINDS:
            options, selected = select_options(page, f"{env}-{kind}")
            assert options == QUOTA_OPTIONS[kind], (env, kind)
            assert selected == [builders.DEFAULT_QUOTAS[kind]], (env, kind)
    assert select_options(page, "cluster")[1] == ["silver"]
    assert field_errors(page) == {}
    assert REFUSED_BANNER not in page


@pytest.mark.parametrize(
    ("role", "clusters"),
    [
        (Role.USER, NON_LAB_CLUSTERS),
        (Role.SUPER_ADMIN, NON_LAB_CLUSTERS + LAB_CLUSTERS),
    ],
)
def test_lab_clusters_are_offered_only_to_super_admins(client, app, role, clusters):
    builders.login(client, builders.make_user(role))

    page = client.get(NEW).get_data(as_text=True)

    options, selected = select_options(page, "cluster")
    assert options == clusters
    assert selected == ["silver"]


# A NUL cannot be stored (PostgreSQL refuses it). It is taken out before the view runs, on every
# step of the form: the inline check, "back to the form" and the summary used to pass it to the
# database (the search for products of the same name) and answer 500.
NUL_NAME = "Fish\x00Game"


def test_a_nul_is_named_by_the_inline_check(client, owner):
    builders.login(client, owner)
    response = builders.post(
        client, VALIDATE, form(name=NUL_NAME), htmx=True, query_string={"field": "name"}
    )
    assert response.status_code == 200
    fragment = own_fragment(response.get_data(as_text=True))
    assert html.unescape(fragment["text"]) == NAME_NUL
    assert stored_rows() == NOTHING_STORED


@pytest.mark.parametrize("step", ["edit", "review", ""])
def test_a_nul_on_any_step_keeps_the_rest_and_stores_nothing(client, owner, step):
    builders.login(client, owner)
    typed = form(name=NUL_NAME, description="Counts of \x00salmon.", step=step)
    response = builders.post(client, NEW, typed)
    page = response.get_data(as_text=True)
    if step == "edit":  # back to the form: shown again as typed, less the NUL
        assert response.status_code == 200
    else:  # the summary or the request: refused, each field saying why
        assert response.status_code == 422
        assert field_errors(page) == {"name": NAME_NUL, "description": DESCRIPTION_NUL}
    assert "\x00" not in page
    assert 'value="FishGame"' in page
    assert "Counts of salmon." in page
    assert typed["product_owner-email"] in page
    assert stored_rows() == NOTHING_STORED
