from registry.auth.models import Role

from . import builders


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
