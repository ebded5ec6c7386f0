"""Support tools: All requests exported as CSV with the filters on screen (streamed, in chunks,
formula-safe), searched by namespace and workflow name, and the product page's one history of
every request and event."""

import csv
import io
import tracemalloc
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from registry import contract
from registry.extensions import db
from registry.products.services import ContactData
from registry.requests import queries, services
from registry.requests.models import Request, RequestStatus
from tests import builders
from tests.builders import report

HEADER = list(queries.EXPORT_COLUMNS)


def exported(client, **query) -> list[list[str]]:
    response = client.get("/history.csv", query_string=query)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.is_streamed
    assert response.headers["Content-Disposition"] == 'attachment; filename="requests.csv"'
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


@pytest.fixture
def three(owner, admin, other_admin):
    """Three requests: a pending one, an approved gold one, and a rejected one whose product
    name and comment a spreadsheet would run as formulas."""
    pending = builders.submit(owner, name="Pending permits")
    gold = builders.submit(owner, name="Gold gauges", cluster_name="gold")
    services.decide(gold.id, admin, approve=True)
    evil = builders.submit(owner, name="A=HYPERLINK(x)", ministry_code="AG")
    services.decide(evil.id, other_admin, approve=False, comment="=cmd|' /C calc'!A0")
    db.session.commit()
    return pending, gold, evil


def test_the_export_has_a_header_every_request_and_the_filters_on_screen(
    client, support, admin, three
):
    pending, gold, evil = three
    builders.login(client, support)
    header, *rows = exported(client)
    assert header == HEADER
    assert [int(r[0]) for r in rows] == [evil.id, gold.id, pending.id]  # newest first
    by_id = {int(r[0]): dict(zip(HEADER, r, strict=True)) for r in rows}
    assert by_id[gold.id]["status"] == "approved"
    assert by_id[gold.id]["cluster"] == "gold"
    assert by_id[gold.id]["decided_by"] == admin.email
    assert by_id[gold.id]["requested_by"] == "owner@example.com"
    assert by_id[gold.id]["licence_plate"] == gold.product.licence_plate
    assert by_id[pending.id]["decided_by"] == "" and by_id[pending.id]["decided_at"] == ""
    assert by_id[pending.id]["created_at"].endswith("Z")
    # The filters the page takes, the export takes.
    assert [int(r[0]) for r in exported(client, status="approved")[1:]] == [gold.id]
    assert [int(r[0]) for r in exported(client, cluster="gold")[1:]] == [gold.id]
    assert [int(r[0]) for r in exported(client, ministry="AG")[1:]] == [evil.id]
    assert [int(r[0]) for r in exported(client, q="permits")[1:]] == [pending.id]
    assert exported(client, status="cancelled") == [HEADER]


def test_the_export_defuses_formulas(client, support, three):
    builders.login(client, support)
    [row] = exported(client, status="rejected")[1:]
    fields = dict(zip(HEADER, row, strict=True))
    assert fields["decision_comment"] == "'=cmd|' /C calc'!A0"
    assert fields["product"] == "A=HYPERLINK(x)"  # a formula only at the start of a cell


def test_the_page_links_the_export_with_its_filters(client, support, three):
    builders.login(client, support)
    page = client.get("/history", query_string={"status": "approved", "q": "gold"})
    body = page.get_data(as_text=True)
    assert 'href="/history.csv?status=approved&amp;q=gold"' in body
    # HTMX's swap of the results brings the link with the new filters.
    fragment = client.get("/history?type=edit", headers={"HX-Request": "true"})
    assert 'href="/history.csv?type=edit"' in fragment.get_data(as_text=True)


def test_the_export_is_for_the_staff_only(client, owner, three):
    builders.login(client, owner)
    assert client.get("/history.csv").status_code == 403


BULK = 10_000


def _bulk_requests(product_id: int, requester_id: int, n: int) -> None:
    """``n`` cancelled requests of one product in one executemany (SQLAlchemy core): what the
    services would take minutes for."""
    start = datetime(2025, 1, 1, tzinfo=UTC).replace(tzinfo=None)  # stored naive UTC
    data = {"name": "Bulk", "note": "x" * 40}
    rows = [
        {
            "product_id": product_id,
            "type": "edit",
            "status": RequestStatus.CANCELLED.value,
            "requested_by_id": requester_id,
            "created_at": start + timedelta(minutes=i),
            "updated_at": start + timedelta(minutes=i),
            "requested_data": data,
            "attempt": 1,
            "version": 1,
        }
        for i in range(n)
    ]
    db.session.execute(insert(Request.__table__), rows)
    db.session.commit()


def _consume(client, url: str) -> tuple[int, int, int]:
    """Read a streamed export piece by piece, as a client would, never keeping it whole:
    (lines, bytes, the peak of memory Python allocated meanwhile)."""
    tracemalloc.start()
    try:
        response = client.get(url)
        assert response.is_streamed
        lines = total = 0
        for piece in response.response:
            lines += piece.count(b"\n") if isinstance(piece, bytes) else piece.count("\n")
            total += len(piece)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    response.close()
    return lines, total, peak


def test_the_csv_of_10000_requests_streams_with_bounded_memory(
    app, client, support, owner, monkeypatch, count_queries
):
    first = builders.submit(owner)
    _bulk_requests(first.product_id, owner.id, BULK)
    builders.login(client, support)
    _consume(client, "/history.csv?type=create")  # warm: first-use work is not the export's

    with count_queries() as counter:
        lines, total, peak = _consume(client, "/history.csv")
    assert lines == BULK + 2  # the header, the bulk and the first request
    assert total > 1_000_000
    # Read a chunk at a time: 10,001 rows, 500 at a time, each a LIMIT below the last id.
    reads = [s for s in counter.statements if "FROM requests" in s]
    assert len(reads) == BULK // queries.EXPORT_CHUNK + 1
    assert all("LIMIT" in s for s in reads)

    # The same export read in one go (a chunk larger than the table): what holding every row
    # costs. Chunked, the peak is a fraction of it, and under 2 MB whatever the table's size.
    monkeypatch.setattr(queries, "EXPORT_CHUNK", BULK * 2)
    _, whole_total, whole_peak = _consume(client, "/history.csv")
    assert whole_total == total
    assert peak < whole_peak / 4, (peak, whole_peak)
    assert peak < 2_000_000, peak


def _chunk_reads(monkeypatch, client, count_queries) -> int:
    monkeypatch.setattr(queries, "EXPORT_CHUNK", 2)
    with count_queries() as counter:
        exported(client)
    return len([s for s in counter.statements if "FROM requests" in s])


def test_the_export_walks_the_requests_by_id_in_chunks(
    client, support, three, monkeypatch, count_queries
):
    builders.login(client, support)
    # Three requests, two at a time: two reads, the second starting below the first's last id.
    assert _chunk_reads(monkeypatch, client, count_queries) == 2


# --- search by namespace and workflow name -------------------------------------------------------


def listed(client, q) -> list[int]:
    import re

    page = client.get("/history", query_string={"q": q}).get_data(as_text=True)
    return [int(i) for i in re.findall(r'href="/requests/(\d+)"', page)]


def test_a_namespace_or_workflow_name_finds_its_product_and_request(
    client, support, owner, admin, three
):
    pending, gold, _ = three
    plate = gold.product.licence_plate
    change = builders.submit(owner, name="Another")  # a second product, not found
    builders.login(client, support)
    for env in ("prod", "tools", "dev", "test"):
        assert listed(client, f"{plate}-{env}") == [gold.id]
        assert listed(client, f" {plate.upper()}-{env.upper()} ") == [gold.id]  # typed any way
    # A workflow names the request: on its cluster, and on gold's disaster-recovery copy.
    assert listed(client, contract.workflow_name("gold", plate, gold.id)) == [gold.id]
    assert listed(client, contract.workflow_name("golddr", plate, gold.id)) == [gold.id]
    # Another request's id with this plate names nothing.
    assert listed(client, contract.workflow_name("gold", plate, change.id)) == []
    assert listed(client, f"{pending.product.licence_plate}-staging") == []


def test_a_name_search_is_an_index_lookup_not_a_pattern_scan(client, support, three, count_queries):
    _, gold, _ = three
    builders.login(client, support)
    with count_queries() as counter:
        client.get("/history", query_string={"q": f"{gold.product.licence_plate}-prod"})
    reads = [s for s in counter.statements if "FROM requests" in s]
    assert reads and not any("LIKE" in s.upper() for s in reads)


# --- the product page's history ------------------------------------------------------------------


@pytest.fixture
def lived(owner, admin):
    """A product created, then changed: two requests and their timelines."""
    create = builders.submit(owner, owner=ContactData("Olivia", "Owner", "owner@example.com"))
    services.decide(create.id, admin, approve=True)
    for step in contract.STEPS:
        report(create, step)
    db.session.commit()
    product = create.product
    data = builders.product_data(
        name=product.name,
        owner=ContactData("Olivia", "Owner", "owner@example.com"),
        primary_lead=ContactData("Tam", "Lead", product.contacts[1].email),
        description="Changed.",
    )
    change = services.submit_edit(
        product, data, owner, justification="Two more services go live in March."
    )
    db.session.commit()
    return create, change


def _history(page: str) -> list[str]:
    """The entries of the product page's history, in order."""
    start = page.index('id="product-history"')
    return page[start : page.index("</ol>", start)].split("<li")[1:]


def test_the_product_page_shows_every_request_and_event_in_one_history(client, owner, lived):
    create, change = lived
    builders.login(client, owner)
    url = f"/products/{create.product.licence_plate}"
    entries = _history(client.get(url).get_data(as_text=True))
    # The create: submitted, approved, every step; the change, approved by the rules.
    assert len(entries) == 2 + len(contract.STEPS) + 1
    # Newest first, each labelled with its request and linked to it.
    assert f'href="/requests/{change.id}">#{change.id} change</a>' in entries[0]
    assert "Submitted and approved automatically" in entries[0]
    assert "Provisioned" in entries[1]
    assert all(f"#{create.id} new product" in e for e in entries[1:])
    assert "Pending approval" in entries[-1]


def test_a_long_history_is_paged(client, owner, lived, monkeypatch):
    create, _ = lived
    monkeypatch.setattr(queries.product_history, "__defaults__", (4,))
    builders.login(client, owner)
    url = f"/products/{create.product.licence_plate}"
    first = client.get(url).get_data(as_text=True)
    assert len(_history(first)) == 4
    assert f'href="{url}?page=2"' in first
    last = _history(client.get(url, query_string={"page": 3}).get_data(as_text=True))
    assert len(last) == 11 - 8
    assert "Pending approval" in last[-1]


def test_the_history_runs_the_same_queries_however_long(client, owner, lived, count_queries):
    create, change = lived
    builders.login(client, owner)
    url = f"/products/{create.product.licence_plate}"
    client.get(url)
    with count_queries() as counter:
        client.get(url)
    before = counter.count
    for step in contract.STEPS[:5]:  # five more events, by the provisioner (no actor)
        report(change, step)
    db.session.commit()
    with count_queries() as counter:
        client.get(url)
    assert counter.count == before


def test_support_with_no_products_is_pointed_to_what_they_can_read(client, support):
    builders.login(client, support)
    page = client.get("/products").get_data(as_text=True)
    assert "You are not a contact of any product." in page
    assert 'href="/history"' in page
    # Nothing offers what support may not do.
    assert 'href="/products/new"' not in page
    assert client.get("/products/new").status_code == 403
