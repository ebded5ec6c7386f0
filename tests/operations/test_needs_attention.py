"""The review queue's "Needs attention": failed requests and those the provisioner is silent on,
with re-send for super admins (support reads them), and the Operations count of failures
linking to it."""

from registry.extensions import db
from registry.requests.models import Request
from tests import builders
from tests.operations import ops_scenario


def test_failed_and_silent_requests_are_atop_the_queue_with_re_send(
    app, client, owner, admin, support
):
    scenario = ops_scenario.build(owner, admin)
    silent = ops_scenario.silent_in_flight(owner, admin)
    builders.login(client, admin)
    page = client.get("/admin/queue").get_data(as_text=True)
    section = page.split('id="needs-attention"')[1].split("</section>")[0]
    assert "Needs attention (2)" in page
    assert f">#{scenario.failed}</a> Broken one" in section
    assert "failed at the provisioner" in section
    assert f">#{silent.id}</a>" in section and "no report from the provisioner" in section
    assert f'action="/admin/requests/{scenario.failed}/resend"' in section
    # A pending request is not "needing attention": it is in the queue below.
    assert f">#{scenario.pending_new}</a>" not in section

    resent = builders.post(client, f"/admin/requests/{scenario.failed}/resend")
    assert resent.status_code in (302, 303)
    db.session.expire_all()
    assert db.session.get(Request, scenario.failed).status == "approved"
    page = client.get("/admin/queue").get_data(as_text=True)
    assert "Needs attention (1)" in page  # the re-sent one is in flight again, not yet silent

    # Support sees the section and no re-send.
    reader = app.test_client()
    builders.login(reader, support)
    page = reader.get("/admin/queue").get_data(as_text=True)
    assert "Needs attention (1)" in page and "/resend" not in page


def test_the_operations_count_of_failures_links_to_them(app, client, owner, admin):
    ops_scenario.build(owner, admin)
    builders.login(client, admin)
    page = client.get("/operations").get_data(as_text=True)
    assert '<a href="/admin/queue#needs-attention">Requests that failed</a>' in page


def test_nothing_to_attend_to_shows_no_section(app, client, admin):
    builders.login(client, admin)
    assert 'id="needs-attention"' not in client.get("/admin/queue").get_data(as_text=True)
