"""Forms that say what they do (issue 11, item 3), without a browser: no silent cut of a long
name (a counter, the server's refusal with the text intact), a contact email's change answers for
the other contact emails too (out of band), help beside the cluster and the quotas, a warning for
a name another product has, the people search behind "pick a contact", and the summary a browser
sees before the request is sent (while a plain POST still sends it at once)."""

import html
import re

import pytest
from sqlalchemy import func, select

from registry.auth.models import Role
from registry.extensions import db
from registry.products.models import Product
from registry.products.services import ContactData
from registry.reference.data import CLUSTER_DESCRIPTIONS
from registry.requests import services as request_services
from registry.requests.models import Request
from tests import builders
from tests.requests.test_product_form import (
    LEAD_IS_OWNER,
    NAME_TOO_LONG,
    NOTHING_STORED,
    SECONDARY,
    SECONDARY_NOT_DIFFERENT,
    VALIDATE,
    field_errors,
    form,
    input_value,
    own_fragment,
    stored_rows,
    textarea_value,
)

NEW = "/products/new"
PEOPLE = "/products/people"
OOB = re.compile(
    r'<p class="field-error" id="(?P<name>[\w-]+)-error"[^>]*hx-swap-oob="true"[^>]*>'
    r"(?P<text>.*?)</p>",
    re.S,
)


def tag(page: str, name: str) -> str:
    match = re.search(rf'<(?:input|textarea)[^>]*\bname="{re.escape(name)}"[^>]*>', page)
    assert match, f"no field {name}"
    return match.group(0)


def counter(page: str, name: str) -> tuple[str, str]:
    """(class, text) of the counter beside field ``name``."""
    match = re.search(rf'<p class="([^"]*)" id="{name}-counter"[^>]*>(.*?)</p>', page, re.S)
    assert match, f"no counter for {name}"
    return match.group(1), html.unescape(match.group(2))


def count_products() -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Product))


# 1. No silent cut


def test_name_and_description_have_a_counter_and_no_maxlength(client, owner):
    builders.login(client, owner)

    page = client.get(NEW).get_data(as_text=True)

    for name, limit in (("name", 40), ("description", 512)):
        field = tag(page, name)
        assert "maxlength" not in field, field
        assert f'data-counter="{name}-counter"' in field
        assert f"{name}-counter" in re.search(r'aria-describedby="([^"]*)"', field).group(1)
        assert counter(page, name) == ("counter", f"0 of {limit} characters")
        assert f'id="{name}-counter-live" aria-live="polite"' in page


def test_a_too_long_name_is_refused_with_the_text_intact_and_the_counter_over(client, owner):
    builders.login(client, owner)
    long_name = "River crossing permits for the whole north"  # 42 characters
    long_description = "d" * 515

    response = builders.post(
        client, NEW, form(name=long_name, description=long_description, step="review")
    )

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert field_errors(page) == {
        "name": NAME_TOO_LONG,
        "description": "Description must be 512 characters or fewer.",
    }
    assert input_value(page, "name") == long_name
    assert textarea_value(page, "description") == long_description
    assert counter(page, "name") == ("counter over", "42 of 40 characters: 2 too many")
    assert counter(page, "description") == ("counter over", "515 of 512 characters: 3 too many")
    assert stored_rows() == NOTHING_STORED


# 2. Cross-field errors follow either field


def validate(client, field: str, **overrides) -> tuple[re.Match, dict[str, str]]:
    response = builders.post(
        client, VALIDATE, form(**overrides), htmx=True, query_string={"field": field}
    )
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    others = {m["name"]: html.unescape(m["text"]) for m in OOB.finditer(body)}
    return own_fragment(body), others


def test_changing_the_owner_email_updates_the_leads_error_out_of_band(client, owner):
    builders.login(client, owner)
    same = {"product_owner-email": "same@example.com", "primary_lead-email": "same@example.com"}

    # The owner's email made equal to the lead's: the lead's message appears, though the lead's
    # field was not touched.
    own, others = validate(client, "product_owner-email", **same)
    assert own["text"] == ""
    assert others == {"primary_lead-email": LEAD_IS_OWNER}

    # The owner's email changed again: the stale message on the lead goes away.
    own, others = validate(
        client, "product_owner-email", **{**same, "product_owner-email": "pat@example.com"}
    )
    assert others == {"primary_lead-email": ""}


def test_a_lead_email_change_answers_for_every_other_contact_email_with_a_value(client, owner):
    builders.login(client, owner)

    own, others = validate(
        client,
        "primary_lead-email",
        **{
            **SECONDARY,
            "product_owner-email": "po@example.com",
            "primary_lead-email": "sam.second@example.com",
            "secondary_lead-email": "sam.second@example.com",
        },
    )

    assert own["text"] == ""
    assert others == {"product_owner-email": "", "secondary_lead-email": SECONDARY_NOT_DIFFERENT}

    # A contact email left empty is not judged out of band: the person has not got there yet.
    _, others = validate(client, "product_owner-email", **{"primary_lead-email": ""})
    assert others == {}
    # Other fields answer for themselves only.
    _, others = validate(client, "description")
    assert others == {}


# 3. Help beside the cluster and the quotas


def test_the_form_says_what_each_cluster_and_quota_option_is(client, owner):
    builders.login(client, owner)

    page = client.get(NEW).get_data(as_text=True)

    help_ = re.search(r'<details class="help" id="cluster-help">(.*?)</details>', page, re.S)
    assert help_, "no cluster help"
    text = html.unescape(help_.group(1))
    for name in ("silver", "gold", "emerald"):
        assert CLUSTER_DESCRIPTIONS[name] in text
    assert "Gold (DR)" in CLUSTER_DESCRIPTIONS["gold"]
    for lab in ("klab", "klab2", "clab"):  # not offered to a product team, not explained
        assert CLUSTER_DESCRIPTIONS[lab] not in text
    quotas = re.search(r'<details class="help" id="quota-help">(.*?)</details>', page, re.S)
    assert quotas, "no quota help"
    for words in (
        "0.5 cores requested, 1.5 limit (default)",
        "1 core requested, 2 limit;",
        "64 GiB requested, 128 GiB limit",
        "512 GiB block, file and capacity; 256 GiB backup",
        "5 volume snapshots",
    ):
        assert words in html.unescape(quotas.group(1))
    # Each option says its numbers in the list itself.
    assert re.search(r'<option[^>]*value="cpu-request-2-limit-4"[^>]*>2 cores requested', page)


def test_super_admins_read_about_the_lab_clusters_too(client, admin):
    builders.login(client, admin)
    page = html.unescape(client.get(NEW).get_data(as_text=True))
    assert CLUSTER_DESCRIPTIONS["klab"] in page


# 4. A name another product has: a warning, not a refusal

WARNING = re.compile(r'<p class="field-warning" id="(?P<id>[\w-]+)"[^>]*>(?P<text>.*?)</p>', re.S)


def warning_in(body: str) -> str:
    match = WARNING.search(body)
    assert match, body
    return re.sub(r"<[^>]+>", "", html.unescape(match["text"])).strip()


def test_a_name_another_product_has_is_a_warning_naming_it_only_to_those_who_see_it(
    client, owner, stranger, admin
):
    other = builders.submit(stranger, name="Santé Permits")
    plate = other.product.licence_plate

    builders.login(client, owner)
    response = builders.post(
        client, VALIDATE, form(name="SANTE permits"), htmx=True, query_string={"field": "name"}
    )
    body = response.get_data(as_text=True)
    assert own_fragment(body)["text"] == ""  # no error
    assert warning_in(body) == (
        "Another product already has this name. You can still use it; a different one avoids "
        "mix-ups."
    )
    assert plate not in body
    assert 'hx-swap-oob="true"' in WARNING.search(body).group(0)

    # A unique name clears the warning.
    response = builders.post(
        client, VALIDATE, form(name="Unique name"), htmx=True, query_string={"field": "name"}
    )
    assert warning_in(response.get_data(as_text=True)) == ""

    # On the summary, too; and sending still works.
    response = builders.post(client, NEW, form(name="Sante Permits", step="review"))
    assert response.status_code == 200
    assert "Another product already has this name" in warning_in(response.get_data(as_text=True))
    response = builders.post(client, NEW, form(name="Sante Permits"))
    assert response.status_code == 303
    assert count_products() == 2

    # Someone who may see the other product reads its name and plate.
    staff = client.application.test_client()
    builders.login(staff, admin)
    response = builders.post(
        staff, VALIDATE, form(name="santé permits"), htmx=True, query_string={"field": "name"}
    )
    text = warning_in(response.get_data(as_text=True))
    assert text.startswith("Another product is already called “Santé Permits”")
    assert plate in text or plate in response.get_data(as_text=True)


def test_a_products_own_name_is_not_another_products(client, owner):
    req = builders.submit(owner, name="Fish ladders")
    plate = req.product.licence_plate
    builders.login(client, owner)

    response = builders.post(
        client,
        VALIDATE,
        form(name="Fish Ladders"),
        htmx=True,
        query_string={"field": "name", "plate": plate},
    )

    assert warning_in(response.get_data(as_text=True)) == ""


# 5. People search


def people(client, q: str | None, **query) -> tuple[int, str]:
    params = dict(query)
    if q is not None:
        params["q"] = q
    response = client.get(PEOPLE, query_string=params, headers={"HX-Request": "true"})
    return response.status_code, response.get_data(as_text=True)


PERSON = re.compile(
    r'<button type="button"[^>]*data-person data-contact="(?P<contact>[^"]*)" '
    r'data-first-name="(?P<first>[^"]*)" data-last-name="(?P<last>[^"]*)" '
    r'data-email="(?P<email>[^"]*)">'
)


def found(body: str) -> list[tuple[str, str, str]]:
    return [(m["first"], m["last"], m["email"]) for m in PERSON.finditer(body)]


def test_people_search_finds_the_contacts_of_the_askers_products_by_name_or_email(client, owner):
    builders.submit(
        owner,
        owner=ContactData("Mona", "Lake", "mona.lake@gov.bc.ca"),
        primary_lead=ContactData("Tam", "Moreau", "tam.moreau@gov.bc.ca"),
        secondary_lead=ContactData("Morgan", "River", "morgan.river@gov.bc.ca"),
    )
    builders.login(client, owner)

    status, body = people(client, "mor", contact="primary_lead")

    assert status == 200
    assert found(body) == [
        ("Morgan", "River", "morgan.river@gov.bc.ca"),
        ("Tam", "Moreau", "tam.moreau@gov.bc.ca"),
    ]
    assert all(m["contact"] == "primary_lead" for m in PERSON.finditer(body))
    assert '<ul class="people">' in body
    # By the start of an email or a last name, case aside.
    assert found(people(client, "MONA.L")[1]) == [("Mona", "Lake", "mona.lake@gov.bc.ca")]
    assert found(people(client, "lak")[1]) == [("Mona", "Lake", "mona.lake@gov.bc.ca")]
    # Never inside an address: the domain every colleague shares lists nobody.
    assert found(people(client, "gov.bc")[1]) == []
    # Only names and emails: no role, no product.
    assert "Product team" not in body and "super" not in body.lower()


def test_people_search_lists_only_people_the_asker_may_know(client, owner, admin):
    builders.make_user(email="morgan.river@gov.bc.ca", name="Morgan River")
    builders.submit(admin, owner=ContactData("Morag", "Other", "morag.other@gov.bc.ca"))
    builders.login(client, owner)

    # Another team's contact and an account the owner shares no product with stay unlisted.
    assert found(people(client, "mor")[1]) == []

    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})
    builders.login(client, admin)
    assert found(people(client, "mor")[1]) == [
        ("Morag", "Other", "morag.other@gov.bc.ca"),
        ("Morgan", "River", "morgan.river@gov.bc.ca"),
    ]


def test_people_search_needs_three_characters_and_gives_ten_at_most(client, owner):
    for n in range(12):
        builders.submit(
            owner, owner=ContactData("Alex", f"Number{n:02}", f"alex{n:02}@example.com")
        )
    builders.login(client, owner)

    for short in ("a", "al"):
        status, body = people(client, short)
        assert status == 200
        assert found(body) == []
        assert "at least 3 characters" in body
    assert found(people(client, "")[1]) == []
    assert found(people(client, None)[1]) == []
    assert len(found(people(client, "alex")[1])) == 10
    _, body = people(client, "zzz-nobody")
    assert found(body) == []
    assert "Nobody found" in body
    # A contact name not one of the form's fieldsets is dropped, not echoed.
    _, body = people(client, "alex", contact='x" onclick="alert(1)')
    assert "onclick" not in body
    # Wildcards are searched as text.
    assert found(people(client, "%%%")[1]) == []
    assert found(people(client, "___")[1]) == []


@pytest.mark.parametrize(
    ("role", "status"), [(Role.USER, 200), (Role.SUPER_ADMIN, 200), (Role.SUPPORT, 403)]
)
def test_people_search_is_for_those_who_may_ask_for_products(client, role, status):
    asker = builders.make_user(role)
    builders.submit(asker, owner=ContactData("Find", "Me", "findme@example.com"))
    builders.login(client, asker)
    code, body = people(client, "find")
    assert code == status
    if status == 200:
        assert found(body) == [("Find", "Me", "findme@example.com")]
    else:
        assert "findme@example.com" not in body


def test_people_search_sends_the_anonymous_to_sign_in(client, owner):
    response = client.get(PEOPLE, query_string={"q": "olivia"})
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]
    assert "owner@example.com" not in response.get_data(as_text=True)


def test_the_form_offers_the_people_search_under_each_contact(client, owner):
    builders.login(client, owner)
    page = client.get(NEW).get_data(as_text=True)
    for group in ("product_owner", "primary_lead", "secondary_lead"):
        assert f'<label for="{group}-find">' in page
        assert f'hx-get="/products/people?contact={group}"' in page
        assert 'hx-trigger="input changed delay:300ms, search"' in page
        assert f'id="{group}-people" aria-live="polite"' in page


# 6. The summary before a request is sent


def test_the_browser_form_asks_for_the_summary_first(client, owner):
    builders.login(client, owner)
    page = client.get(NEW).get_data(as_text=True)
    assert '<input type="hidden" name="step" value="review">' in page
    assert "Check and submit for review" in page


def test_the_summary_shows_what_will_be_asked_and_stores_nothing(client, owner):
    builders.login(client, owner)
    data = form(
        name="River Permits",
        cluster="gold",
        ministry="FLNR",
        step="review",
        **{**SECONDARY, "prod-cpu": "cpu-request-4-limit-8", "dev-storage": "storage-64"},
    )

    response = builders.post(client, NEW, data)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert stored_rows() == NOTHING_STORED
    review = page[page.index('<section class="review"') : page.index("<div hidden>")]
    text = html.unescape(re.sub(r"<[^>]+>", " ", review))
    text = re.sub(r"\s+", " ", text)
    assert "Check your request" in text
    assert "River Permits" in text
    assert "FLNR - Forests" in text
    assert "Gold Hosting Tier (with a disaster-recovery copy on golddr)" in text
    assert f"Product owner Pat Owner <{data['product_owner-email']}>" in text
    assert f"Primary technical lead Tam Lead <{data['primary_lead-email']}>" in text
    assert "Secondary technical lead Sam Second <sam.second@example.com>" in text
    assert "<plate>-prod 4 cores, limit 8" in text
    assert "<plate>-dev 0.5 cores, limit 1.5 2 GiB, limit 4 GiB 64 GiB 5 snapshots" in text
    # The values ride along, hidden, without step=review, with the one-time key.
    hidden = page[page.index("<div hidden>") :]
    assert 'name="step" value="review"' not in page
    assert input_value(hidden, "name") == "River Permits"
    assert re.fullmatch(r"[0-9a-f]{32}", input_value(hidden, "submission_key"))
    buttons = re.findall(
        r"<button[^>]*>[^<]*</button>", page[page.index('<div class="actions">') :]
    )
    assert buttons[0] == '<button type="submit">Send the request</button>'
    assert 'name="step" value="edit"' in buttons[1]


def summary_body(page: str) -> dict:
    """What the summary's form posts when "Send the request" is pressed."""
    form_html = page[page.index('<form id="product-form"') :]
    body = {}
    for m in re.finditer(r"<input[^>]*>", form_html):
        name = re.search(r'\bname="([^"]*)"', m.group(0))
        value = re.search(r'\bvalue="([^"]*)"', m.group(0))
        if name and name.group(1) != "q":
            body[name.group(1)] = html.unescape(value.group(1)) if value else ""
    for m in re.finditer(r'<textarea[^>]*name="([^"]*)"[^>]*>(.*?)</textarea>', form_html, re.S):
        body[m.group(1)] = html.unescape(m.group(2)).removeprefix("\r\n").removeprefix("\n")
    for m in re.finditer(r'<select[^>]*name="([^"]*)"[^>]*>(.*?)</select>', form_html, re.S):
        chosen = re.search(r'<option[^>]*selected[^>]*value="([^"]*)"', m.group(2)) or re.search(
            r'<option[^>]*value="([^"]*)"[^>]*selected', m.group(2)
        )
        body[m.group(1)] = chosen.group(1) if chosen else ""
    return body


def test_send_the_request_from_the_summary_makes_one_request(client, owner):
    builders.login(client, owner)
    page = builders.post(
        client, NEW, form(name="Salmon counts", description="Counts.\nBy river.", step="review")
    ).get_data(as_text=True)

    body = summary_body(page)
    assert "step" not in body
    first = builders.post(client, NEW, dict(body))
    again = builders.post(client, NEW, dict(body))  # sent twice: the one-time key

    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == again.headers["Location"]
    db.session.rollback()
    product = db.session.scalars(select(Product)).one()
    assert (product.name, product.description) == ("Salmon counts", "Counts.\nBy river.")


def test_back_to_the_form_keeps_the_values_and_shows_no_errors(client, owner):
    builders.login(client, owner)
    data = form(
        name="Salmon counts", ministry="ENV", step="edit", **{"prod-cpu": "cpu-request-1-limit-2"}
    )

    response = builders.post(client, NEW, data)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert input_value(page, "name") == "Salmon counts"
    assert re.search(r'<option selected value="ENV">|<option value="ENV" selected', page)
    assert field_errors(page) == {}
    assert '<input type="hidden" name="step" value="review">' in page
    assert stored_rows() == NOTHING_STORED


def test_the_summary_over_htmx_is_the_form_alone(client, owner):
    builders.login(client, owner)
    response = builders.post(client, NEW, form(step="review"), htmx=True)
    body = response.get_data(as_text=True).strip()
    assert response.status_code == 200
    assert body.startswith('<form id="product-form"') and body.endswith("</form>")
    assert "Send the request" in body


def test_a_post_without_the_review_step_still_sends_at_once(client, owner):
    builders.login(client, owner)
    response = builders.post(client, NEW, builders.form_data())
    assert response.status_code == 303
    assert count_products() == 1


def test_request_again_shows_the_summary_too(client, owner, admin):
    req = builders.submit(owner, name="Fish ladders")
    request_services.decide(req.id, admin, approve=False, comment="Name the ministry that pays.")
    db.session.commit()
    plate = req.product.licence_plate
    url = f"/products/{plate}/request-again"
    builders.login(client, owner)

    page = client.get(url).get_data(as_text=True)
    assert '<input type="hidden" name="step" value="review">' in page
    response = builders.post(client, url, form(name="Fish ladders", ministry="FLNR", step="review"))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Check your request" in page
    assert f"{plate}-prod" in page
    assert "Another product" not in page  # its own name
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Request)) == 1

    response = builders.post(client, url, summary_body(page))
    assert response.status_code == 303
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Request)) == 2
