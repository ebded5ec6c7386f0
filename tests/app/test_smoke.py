from registry.auth.models import Role
from tests import builders


def test_owner_submits_and_admin_approves(client, app, owner, admin):
    builders.login(client, owner)
    response = builders.post(client, "/products/new", builders.form_data(name="Smoke"))
    assert response.status_code == 303, response.get_data(as_text=True)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Smoke" in page and "Pending approval" in page
    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})
    builders.login(client, admin)
    queue = client.get("/admin/queue").get_data(as_text=True)
    assert "Smoke" in queue
    assert admin.role == Role.SUPER_ADMIN


def test_the_queue_reads_the_whole_request_when_it_is_opened(client, owner, admin, support):
    req = builders.submit(owner, description="Counts salmon at the weirs.", name="Weir counts")
    plate = req.product.licence_plate
    whole = f"/admin/requests/{req.id}/whole"
    builders.login(client, admin)

    # The queue holds the item and a link to its whole request, not the whole request itself.
    queue = client.get("/admin/queue").get_data(as_text=True)
    assert "Weir counts" in queue
    assert f'hx-get="{whole}"' in queue and f'href="{whole}"' in queue
    assert "Counts salmon at the weirs." not in queue
    assert f"{plate}-prod" not in queue

    # Opened, HTMX swaps in the fragment: the record as asked, without the layout.
    fragment = client.get(whole, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "Counts salmon at the weirs." in fragment
    assert f"{plate}-prod" in fragment
    assert "<html" not in fragment and "site-header" not in fragment

    # Without JavaScript the link is a page of its own, for the staff who read the queue.
    page = client.get(whole)
    assert page.status_code == 200
    assert "Counts salmon at the weirs." in page.get_data(as_text=True)
    assert "site-header" in page.get_data(as_text=True)
    assert client.get("/admin/requests/999999/whole").status_code == 404
    client.post("/logout", data={"csrf_token": builders.csrf_token(client)})
    builders.login(client, support)
    assert client.get(whole, headers={"HX-Request": "true"}).status_code == 200
