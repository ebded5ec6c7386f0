"""Time from a super admin's approve request to "provisioned" in the database.

Runs the whole loop on this machine: the web app (through its WSGI interface), a real
nats-server with JetStream, the relay and the bridge, and the reference provisioner with its git
repository. Approves the requests one after another and breaks each one down:

  decision     the admin's POST, to its response (validation, transition, outbox rows, commit)
  publish      response -> the relay holds JetStream's ack and has marked the outbox row sent
  delivery     response -> the provisioner reports workflow_started (relay woken by the commit,
               publish, JetStream delivery to the provisioner's consumer; includes "publish")
  provisioner  workflow_started -> provisioned, as the provisioner reports them (git work)
  status       the provisioner's provisioned report -> applied in the database (bridge)

    python bench/approve_to_provisioned.py --database sqlite --requests 50
    python bench/approve_to_provisioned.py --database postgres --requests 50
    python bench/approve_to_provisioned.py --database postgres --requests 50 --layout split

``--layout single`` (the default) runs everything in this process, the web app through its WSGI
interface. ``--layout split`` runs it as production does: the web app under gunicorn (2 workers,
no background work) reached over HTTP, ``flask worker`` (relay, bridge, mail) and ``flask
provisioner`` as processes of their own, woken across processes by PostgreSQL's NOTIFY (needs
``pip install -e .[server]`` for gunicorn, and PostgreSQL).
"""

import argparse
import contextlib
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from provisioner.worker import ProvisionerWorker
from registry.auth import services as accounts
from registry.auth.models import Role
from registry.extensions import db
from registry.outbox.models import OutboxMessage
from registry.products.services import ContactData, ProductData
from registry.provisioning.worker import NatsWorker
from registry.requests import services as request_services
from registry.requests.models import Request, RequestEvent
from registry.timeutil import utcnow

QUOTAS = {
    "cpu": "cpu-request-0.5-limit-1.5",
    "memory": "memory-request-2-limit-4",
    "storage": "storage-1",
    "snapshot": "snapshot-5",
}


def submit_requests(count: int) -> list[int]:
    owner = accounts.create_user("owner@bench.example", "Owner", "pw", Role.USER)
    ids = []
    for i in range(count):
        data = ProductData(
            name=f"Bench product {i}",
            description="Benchmark",
            ministry_code="CITZ",
            cluster_name="silver",
            owner=ContactData("Pat", "Owner", f"po{i}@bench.example"),
            primary_lead=ContactData("Tam", "Lead", f"tl{i}@bench.example"),
            secondary_lead=None,
            quotas={env: dict(QUOTAS) for env in ("tools", "dev", "test", "prod")},
        )
        ids.append(request_services.submit_create(data, owner).id)
    db.session.commit()
    return ids


def wait_provisioned(request_id: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = db.session.scalar(db.select(Request.status).where(Request.id == request_id))
        db.session.rollback()
        if status == "provisioned":
            return
        if status == "failed":
            raise RuntimeError(f"request {request_id} failed")
        time.sleep(0.002)
    raise TimeoutError(f"request {request_id} not provisioned in {timeout}s")


def breakdown(request_id: int, clicked, answered) -> dict[str, float]:
    sent = db.session.scalar(
        db.select(OutboxMessage.sent_at).where(OutboxMessage.request_id == request_id)
    )
    events = {
        e.step: e
        for e in db.session.scalars(
            db.select(RequestEvent).where(RequestEvent.request_id == request_id)
        )
        if e.step
    }
    started, done = events["workflow_started"], events["provisioned"]
    seconds = lambda a, b: (b - a).total_seconds()  # noqa: E731
    return {
        "total": seconds(clicked, done.created_at),
        "decision": seconds(clicked, answered),
        "publish": seconds(answered, sent),
        "delivery": seconds(answered, started.reported_at),
        "provisioner": seconds(started.reported_at, done.reported_at),
        "status": seconds(done.reported_at, done.created_at),
    }


def run_single(app, ids: list[int]) -> list[dict]:
    relay_and_bridge = NatsWorker(app)
    provisioner = ProvisionerWorker(app)
    relay_and_bridge.start()
    provisioner.start()
    assert relay_and_bridge.ready.wait(15) and provisioner.ready.wait(15)
    client = app.test_client()
    client.post("/login", data={"email": "admin@bench.example", "password": "pw"})
    rows = []
    try:
        with app.app_context():
            for request_id in ids:
                clicked = utcnow()
                response = client.post(
                    f"/admin/requests/{request_id}/decision", data={"decision": "approve"}
                )
                answered = utcnow()
                assert response.status_code == 303, response.status_code
                wait_provisioned(request_id)
                rows.append(breakdown(request_id, clicked, answered))
    finally:
        provisioner.stop()
        relay_and_bridge.stop()
    return rows


@contextlib.contextmanager
def processes(url: str, nats_url: str, gitops: str, port: int):
    """gunicorn (web only), flask worker and flask provisioner, as production runs them."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "gunicorn").exists():
        sys.exit("--layout split needs gunicorn: pip install -e '.[server]'")
    env = {
        **os.environ,
        "REGISTRY_SQLALCHEMY_DATABASE_URI": url,
        "REGISTRY_NATS_URL": nats_url,
        "REGISTRY_SECRET_KEY": "bench",
        "REGISTRY_PROVISIONER_GITOPS_REPO": gitops,
        "REGISTRY_WTF_CSRF_ENABLED": "false",
        "REGISTRY_RUN_BACKGROUND": "false",
        "REGISTRY_LOG_LEVEL": "WARNING",
    }
    root = Path(__file__).resolve().parent.parent
    commands = [
        [str(bin_dir / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", "wsgi:app"],
        [str(bin_dir / "flask"), "--app", "registry", "worker"],
        [str(bin_dir / "reference-provisioner")],
    ]
    started = [
        subprocess.Popen(command, env=env, cwd=root, stdout=subprocess.DEVNULL)
        for command in commands
    ]
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=20)


def http_session(port: int) -> tuple[http.client.HTTPConnection, str]:
    deadline = time.monotonic() + 30
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            body = urllib.parse.urlencode({"email": "admin@bench.example", "password": "pw"})
            conn.request(
                "POST",
                "/login",
                body,
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
            response = conn.getresponse()
            response.read()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    cookie = response.getheader("Set-Cookie").split(";", 1)[0]
    return conn, cookie


def run_split(app, ids: list[int], url: str, nats_url: str, gitops: str) -> list[dict]:
    from registry.provisioning import embedded

    port = embedded.free_port()
    rows = []
    with processes(url, nats_url, gitops, port):
        conn, cookie = http_session(port)
        time.sleep(2)  # the worker's listener and the provisioner's consumer get ready
        with app.app_context():
            for request_id in ids:
                clicked = utcnow()
                conn.request(
                    "POST",
                    f"/admin/requests/{request_id}/decision",
                    "decision=approve",
                    {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
                )
                response = conn.getresponse()
                response.read()
                answered = utcnow()
                assert response.status == 303, response.status
                wait_provisioned(request_id)
                rows.append(breakdown(request_id, clicked, answered))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--layout", choices=["single", "split"], default="single")
    args = parser.parse_args()
    if args.layout == "split" and args.database != "postgres":
        parser.error("--layout split needs --database postgres (processes wake through NOTIFY)")

    with (
        common.database(args.database) as url,
        common.nats_server() as nats_url,
        tempfile.TemporaryDirectory() as gitops,
    ):
        app = common.make_app(url, nats_url, gitops)
        with app.app_context():
            accounts.create_user("admin@bench.example", "Admin", "pw", Role.SUPER_ADMIN)
            db.session.commit()
            ids = submit_requests(args.requests)
        if args.layout == "single":
            rows = run_single(app, ids)
        else:
            rows = run_split(app, ids, url, nats_url, gitops)

    print(
        f"approve -> provisioned, {args.requests} requests one after another, on"
        f" {args.database}, layout {args.layout}"
    )
    print(f"machine: {common.machine()}; {common.git_version()}")
    print(f"{'part':<12} {'median ms':>10} {'p95 ms':>10}")
    for part in ("total", "decision", "publish", "delivery", "provisioner", "status"):
        values = [row[part] * 1000 for row in rows]
        print(
            f"{part:<12} {statistics.median(values):>10.1f} {common.percentile(values, 95):>10.1f}"
        )


if __name__ == "__main__":
    main()
