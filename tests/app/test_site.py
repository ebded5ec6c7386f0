"""The site-wide parts: times in the display zone, error pages in the registry's words (a 500
that tells nothing of its cause), the favicon, the footer, the skip link and the sign-in page."""

from datetime import UTC, datetime

import pytest
from flask import render_template_string

from registry.filters import local_time
from tests import builders


def stored(*args) -> datetime:
    """A time as the database keeps it: naive, in UTC."""
    return datetime(*args, tzinfo=UTC).replace(tzinfo=None)


@pytest.mark.parametrize(
    ("utc", "zone", "shown"),
    [
        (stored(2026, 11, 26, 22, 5), "America/Vancouver", "26 Nov 2026, 14:05 PST"),
        (stored(2026, 7, 1, 9, 30), "America/Vancouver", "1 Jul 2026, 02:30 PDT"),
        (stored(2026, 7, 1, 9, 30), "America/Toronto", "1 Jul 2026, 05:30 EDT"),
        (stored(2026, 7, 1, 9, 30), "UTC", "1 Jul 2026, 09:30 UTC"),
    ],
)
def test_times_are_shown_in_the_display_zone_with_its_name(app, utc, zone, shown):
    app.config["DISPLAY_TIMEZONE"] = zone
    assert local_time(utc) == shown


def test_a_relative_time_comes_with_the_absolute_one_in_a_time_element(app):
    with app.test_request_context():
        html = render_template_string(
            '{% from "_macros.html" import age %}{{ age(when) }}',
            when=stored(2026, 11, 26, 22, 5),
        )
    assert html.startswith('<time datetime="2026-11-26T22:05:00Z"')
    assert ">26 Nov 2026, 14:05 PST · " in html
    assert html.endswith(" ago</time>")


def test_an_unknown_display_zone_fails_at_start(database_url):
    from registry import create_app

    with pytest.raises(Exception, match="Nowhere/Atlantis"):
        create_app(
            {
                "SQLALCHEMY_DATABASE_URI": database_url,
                "SECRET_KEY": "x",
                "DISPLAY_TIMEZONE": "Nowhere/Atlantis",
            }
        )


def test_favicon_ico_is_the_svg(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response.headers["Location"] == "/static/favicon.svg"
    with client.get("/static/favicon.svg") as svg:
        assert svg.status_code == 200
        assert svg.mimetype == "image/svg+xml"


def test_the_404_page_says_what_happened_what_to_do_and_links_home(app, client):
    app.config["SUPPORT_EMAIL"] = "help@example.com"
    body = client.get("/no/such/page").get_data(as_text=True)
    assert "There is nothing here" in body
    assert "Check the address" in body
    assert 'href="/"' in body
    assert "mailto:help@example.com" in body
    assert "The requested URL was not found" not in body  # werkzeug's words, not ours


@pytest.mark.own_app  # a route added to it
def test_a_500_never_shows_its_cause(app, client):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("password=hunter2 at db.internal:5432")

    response = client.get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Something went wrong on our side" in body
    assert "hunter2" not in body
    assert "RuntimeError" not in body
    assert "Traceback" not in body


@pytest.mark.own_app  # a route added to it
def test_the_500_page_still_answers_when_the_page_cannot_be_drawn(app, client, monkeypatch):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("secret")

    import registry.errors

    def broken(*args, **kwargs):
        raise RuntimeError("the database is down too")

    monkeypatch.setattr(registry.errors, "render_template", broken)
    response = client.get("/boom")
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.get_data(as_text=True)
    assert "secret" not in response.get_data(as_text=True)


def test_a_reason_a_view_gives_is_kept(client, admin):
    builders.login(client, admin)
    response = builders.post(client, "/admin/requests/1/decision", {"decision": "maybe"})
    assert response.status_code == 400
    assert "The decision must be approve or reject." in response.get_data(as_text=True)


def test_a_missing_token_is_told_without_its_jargon(client):
    response = client.post("/logout")  # no CSRF token, nobody signed in
    assert response.status_code == 400
    text = response.get_data(as_text=True)
    assert "You are signed out" in text and "CSRF token" not in text


def test_the_footer_skip_link_and_sign_in_page(app, client):
    app.config.update(HELP_URL="https://help.example/registry", SUPPORT_EMAIL="help@example.com")
    body = client.get("/login").get_data(as_text=True)
    assert body.index('class="skip-link" href="#main"') < body.index("<header")
    assert '<main id="main"' in body
    assert 'href="https://help.example/registry"' in body
    assert 'href="mailto:help@example.com"' in body
    assert "ask the platform for OpenShift namespaces" in body
    assert "For a support or super admin role, ask the platform team" in body
