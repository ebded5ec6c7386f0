"""The factory, settings, migrations and commands."""

import secrets

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from registry import create_app
from registry.auth.models import User
from registry.config import weak_secret_key
from registry.extensions import db
from registry.reference.models import Cluster, Ministry, QuotaOption


def test_production_refuses_to_start_without_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.delenv("REGISTRY_SECRET_KEY", raising=False)
    with pytest.raises(RuntimeError, match="REGISTRY_SECRET_KEY is required"):
        create_app({"ENV": "production", "SQLALCHEMY_DATABASE_URI": "sqlite://"})


STRONG_KEY = "f3b1c9e07a5d4e28b6c2a9d1e4f70b3c5a8d2e6f1b9c4a7e"
PRODUCTION = {
    "ENV": "production",
    "SECRET_KEY": STRONG_KEY,
    "SQLALCHEMY_DATABASE_URI": "sqlite://",
    "PUBLIC_URL": "https://registry.example.test",
}


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("x", "it has 1 character(s), fewer than 32"),
        ("REPLACE-ME", "fewer than 32"),  # the example Secret's placeholder
        ("change-me-change-me-change-me-change-me", "a placeholder"),
        ("our-registry-secret-key-for-production", "a placeholder"),
        ("0123456789abcdef0123456789abcdef", "a shorter text repeated"),
        ("a" * 64, "a shorter text repeated"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "too few different characters"),
        (b"\x00" * 31 + b"\x01", "too few different characters"),
    ],
)
def test_production_refuses_to_start_with_a_weak_secret_key(key, why):
    with pytest.raises(RuntimeError, match="REGISTRY_SECRET_KEY is too weak") as refused:
        create_app({**PRODUCTION, "PASSWORD_LOGIN": True, "SECRET_KEY": key})
    assert why in str(refused.value)
    assert "secrets.token_hex(32)" in str(refused.value)  # and how to make one
    # Development takes any key (tests, a laptop).
    assert create_app({"SECRET_KEY": key, "SQLALCHEMY_DATABASE_URI": "sqlite://"})


@pytest.mark.parametrize("make", [secrets.token_hex, secrets.token_urlsafe])
def test_production_starts_with_any_random_key(make):
    # The rule that create_app applies, on many keys; then the app itself on a few of them
    # (building 400 apps asserted the same and took 5 s).
    keys = [make(32) if make is secrets.token_hex else make(24) for _ in range(2000)]  # 64, 32
    keys += [secrets.token_hex(16) for _ in range(2000)]  # the shortest: 16 random bytes in hex
    assert [k for k in keys if weak_secret_key(k)] == []
    for key in keys[:: len(keys) // 4]:
        app = create_app({**PRODUCTION, "PASSWORD_LOGIN": True, "SECRET_KEY": key})
        assert app.config["SECRET_KEY"] == key


def test_production_never_shows_the_development_mailbox():
    app = create_app({**PRODUCTION, "PASSWORD_LOGIN": True})
    assert app.config["DEV_MAILBOX"] is False


def test_production_turns_passwords_off_and_needs_a_way_to_sign_in():
    with pytest.raises(RuntimeError, match="Nobody could sign in"):
        create_app(PRODUCTION)
    app = create_app(
        {
            **PRODUCTION,
            "OIDC_DISCOVERY_URL": "https://sso.example.test/.well-known/openid-configuration",
            "OIDC_CLIENT_ID": "registry",
        }
    )
    assert app.config["PASSWORD_LOGIN"] is False
    assert app.config["SESSION_COOKIE_SECURE"] is True
    # A development app keeps passwords and, over plain HTTP, a cookie the browser will send.
    development = create_app({"SECRET_KEY": "k", "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    assert development.config["PASSWORD_LOGIN"] is True
    assert development.config["SESSION_COOKIE_SECURE"] is False


def test_development_generates_and_keeps_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.delenv("REGISTRY_SECRET_KEY", raising=False)
    from registry import config

    key_file = tmp_path / "secret_key"
    first = config._development_secret_key(tmp_path)
    assert key_file.read_text() == first and len(first) == 64
    assert config._development_secret_key(tmp_path) == first


def test_environment_settings_override_defaults(monkeypatch):
    monkeypatch.setenv("REGISTRY_PAGE_SIZE", "7")
    monkeypatch.setenv("REGISTRY_EXTRA_REVIEWER_ADDRESSES", "a@example.com, b@example.com")
    monkeypatch.setenv("REGISTRY_SQLALCHEMY_DATABASE_URI", "postgresql://u@h/db")
    app = create_app({"SECRET_KEY": "k"})
    assert app.config["PAGE_SIZE"] == 7
    assert app.config["EXTRA_REVIEWER_ADDRESSES"] == ["a@example.com", "b@example.com"]
    # psycopg 3 is the driver this project installs.
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u@h/db"


def test_the_migrations_build_exactly_the_models(app):
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []


def test_reference_data_is_seeded_from_the_domain(app):
    assert db.session.scalar(select(func.count()).select_from(Ministry)) == 29
    assert db.session.get(Ministry, "PSSG").alliance == "JAG"
    assert db.session.get(Ministry, "CITZ").alliance == "none"
    assert db.session.get(Cluster, "silver").is_default
    assert {c.name for c in db.session.scalars(select(Cluster).where(Cluster.is_lab))} == {
        "klab",
        "klab2",
        "clab",
    }
    assert db.session.get(Cluster, "gold").paired_with == "golddr"
    storage = db.session.get(QuotaOption, "storage-64")
    assert storage.quotas == {
        "block": 64,
        "file": 64,
        "backup": 32,
        "capacity": 64,
        "pvc_count": 60,
    }
    assert db.session.get(QuotaOption, "cpu-request-0.5-limit-1.5").is_default


def test_seeding_twice_adds_nothing_and_keeps_edits(runner):
    db.session.get(Ministry, "CITZ").name = "Renamed by an admin"
    db.session.commit()
    result = runner.invoke(args=["seed"])
    assert "0 rows added" in result.output
    db.session.expire_all()
    assert db.session.get(Ministry, "CITZ").name == "Renamed by an admin"


def test_cli_creates_users_and_changes_roles(runner):
    result = runner.invoke(
        args=["users", "create", "New.Person@Example.com", "--name", "New", "--password", "pw"]
    )
    assert result.exit_code == 0, result.output
    user = db.session.scalar(select(User).where(User.email == "new.person@example.com"))
    assert user.role == "user" and user.check_password("pw")

    result = runner.invoke(args=["users", "create", "new.person@example.com", "--password", "x"])
    assert result.exit_code != 0 and "already exists" in result.output

    result = runner.invoke(args=["users", "set-role", "new.person@example.com", "support"])
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert db.session.get(User, user.id).role == "support"

    result = runner.invoke(args=["users", "set-role", "nobody@example.com", "support"])
    assert result.exit_code != 0 and "No account" in result.output


def test_every_response_varies_on_hx_request(client):
    assert "HX-Request" in client.get("/login").headers["Vary"]


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("cpu-request-0.5-limit-1.5", "0.5 cores, limit 1.5"),
        ("cpu-request-1-limit-2", "1 core, limit 2"),
        ("memory-request-64-limit-128", "64 GiB, limit 128 GiB"),
        ("storage-512", "512 GiB"),
        ("snapshot-5", "5 snapshots"),
        ("something-else", "something-else"),
    ],
)
def test_quota_options_read_as_people_say_them(name, shown):
    from registry.filters import quota

    assert quota(name) == shown
