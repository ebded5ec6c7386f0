"""Processes apart, as in production: the web side (this test, which writes and commits as a view
does, with no background threads of its own), ``flask worker`` and ``flask provisioner`` as
processes of their own, on PostgreSQL and a real nats-server.

A commit in one process wakes the relay and the mail sender in another (``NOTIFY`` travels with
the commit), so approve → provisioned is done long before the poll intervals, set to an hour
here: a step that arrives at all was woken, not polled.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from registry.extensions import db
from registry.outbox.models import EmailStatus, OutboxEmail
from registry.requests import services
from registry.requests.models import Request
from tests import builders
from tests.support import eventually

POLL = 3600  # seconds: what the worker would wait without a wake


def _status(request_id: int) -> str:
    db.session.rollback()
    status = db.session.scalar(select(Request.status).where(Request.id == request_id))
    db.session.rollback()
    return status


def _listeners() -> int:
    count = db.session.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query = 'LISTEN registry_outbox' AND datname = current_database()"
        )
    )
    db.session.rollback()
    return count


@pytest.fixture
def split_processes(nats_app, database_url, is_postgres, tmp_path):
    if not is_postgres:
        pytest.skip("processes apart are woken through PostgreSQL's NOTIFY; SQLite ones poll")
    env = {
        **os.environ,
        "REGISTRY_SQLALCHEMY_DATABASE_URI": database_url,
        "REGISTRY_NATS_URL": nats_app.config["NATS_URL"],
        "REGISTRY_NATS_RELAY_POLL_SECONDS": str(POLL),
        "REGISTRY_MAIL_POLL_SECONDS": str(POLL),
        "REGISTRY_SECRET_KEY": "split-layout-test",
        "REGISTRY_PROVISIONER_GITOPS_REPO": str(tmp_path / "gitops"),
    }
    bin_dir = Path(sys.executable).parent
    commands = {
        "worker": [str(bin_dir / "flask"), "--app", "registry", "worker"],
        "provisioner": [str(bin_dir / "reference-provisioner")],
    }
    logs = {name: (tmp_path / f"{name}.log").open("w") for name in commands}
    processes = [
        subprocess.Popen(  # noqa: S603 - the project's own command
            commands[name], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        for name, log in logs.items()
    ]
    try:
        eventually(lambda: _listeners() >= 1, timeout=30, message="the worker never listened")
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=15)
        for log in logs.values():
            log.close()


def test_a_commit_in_one_process_wakes_the_worker_in_another(split_processes, owner, admin):
    for _ in range(3):
        req = builders.submit(owner)
        services.decide(req.id, admin, approve=True)
        db.session.commit()
        # Every step crosses three processes; with polls an hour apart, only wakes get it there.
        eventually(lambda req=req: _status(req.id) == "provisioned", timeout=60)

    # The mail of every step went out too, woken the same way, not by the sender's poll.
    def pending_mail():
        count = db.session.scalar(
            select(func.count())
            .select_from(OutboxEmail)
            .where(OutboxEmail.status == EmailStatus.PENDING.value)
        )
        db.session.rollback()
        return count

    eventually(lambda: pending_mail() == 0, timeout=60)
    assert all(p.poll() is None for p in split_processes), "a process died"
