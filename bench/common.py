"""What the benchmarks share: a throwaway database and nats-server, the machine's description."""

import contextlib
import os
import platform
import statistics
import subprocess
import tempfile
import uuid
from pathlib import Path

from registry import create_app
from registry.cli import prepare_database
from registry.provisioning import embedded


def machine() -> str:
    cpu = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB"
    return (
        f"{os.cpu_count()} cores ({cpu}){memory}; Python {platform.python_version()}; "
        f"{platform.system()} {platform.release()}"
    )


@contextlib.contextmanager
def database(kind: str):
    """A fresh database: a SQLite file, or a PostgreSQL database made for the run and dropped."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.sqlite"
        return
    import psycopg

    admin_url = os.environ.get(
        "BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
    )
    name = f"registry_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def nats_server():
    with tempfile.TemporaryDirectory() as tmp:
        process, url = embedded.start(Path(tmp) / "nats", embedded.free_port())
        try:
            yield url
        finally:
            process.terminate()
            process.wait(timeout=10)


def make_app(database_url: str, nats_url: str, gitops: str | None = None):
    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SECRET_KEY": "bench",
            "NATS_URL": nats_url,
            "PROVISIONER_GITOPS_REPO": gitops,
            "MAIL_SERVER": None,
            "DEV_MAILBOX": True,
            "WTF_CSRF_ENABLED": False,
        }
    )
    with app.app_context():
        prepare_database()
    return app


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def git_version() -> str:
    return subprocess.run(
        ["git", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
