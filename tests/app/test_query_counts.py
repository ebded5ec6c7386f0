"""The queue and history pages run the same number of SQL statements for 10 and for 200 requests."""

import pytest

from registry.extensions import db
from tests import builders


def _fill(requesters, total):
    from registry.requests.models import Request

    have = db.session.query(Request).count()
    for i in range(have, total):
        builders.submit(
            requesters[i % len(requesters)],
            secondary_lead=builders.ContactData("Sec", "Lead", f"sec{i}@example.com")
            if i % 2
            else None,
        )


@pytest.mark.parametrize(
    "url", ["/admin/queue", "/history", "/history?status=pending&q=product", "/admin/mail"]
)
def test_pages_run_a_fixed_number_of_queries(url, client, admin, count_queries):
    requesters = [builders.make_user() for _ in range(5)]
    builders.login(client, admin)
    counts = []
    for total in (10, 200):
        _fill(requesters, total)
        client.get(url)  # warm: first-request work is not the page's
        with count_queries() as counter:
            response = client.get(url)
        assert response.status_code == 200
        counts.append(counter.count)
    assert counts[0] == counts[1], counts
