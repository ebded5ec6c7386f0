"""How fast the bridge applies status reports: one bridge, two bridges, and the plain-SQL floor.

Makes N approved silver requests, publishes the 8 steps of each to
registry_project_provisioning_status before any bridge runs, then times how long one bridge (and,
on a fresh database, two bridges sharing the durable consumer) take to apply every report. The
floor: the same writes (lock the request, advance the target's step, move the request, append the
event) done with plain SQL, one transaction per report, on the same kind of database in the same
run.

    python bench/bridge_throughput.py --database sqlite --requests 100
    python bench/bridge_throughput.py --database postgres --requests 100
"""

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import nats
from sqlalchemy import func, select, text

from bench import common
from bench.approve_to_provisioned import submit_requests
from registry import contract
from registry.auth import services as accounts
from registry.auth.models import Role
from registry.extensions import db
from registry.outbox.models import OutboxMessage
from registry.provisioning.models import ProvisioningTarget
from registry.provisioning.stream import ensure_stream
from registry.provisioning.worker import NatsWorker
from registry.requests import services as request_services
from registry.requests.models import Request, RequestEvent


def approved_requests(app, count: int) -> list[tuple[int, str]]:
    with app.app_context():
        admin = accounts.create_user("admin@bench.example", "Admin", "pw", Role.SUPER_ADMIN)
        ids = submit_requests(count)
        for request_id in ids:
            request_services.decide(request_id, admin, approve=True)
        db.session.execute(db.delete(OutboxMessage))  # nothing for a provisioner here
        db.session.commit()
        return [(r.id, r.product.licence_plate) for r in db.session.scalars(select(Request))]


def reports(requests: list[tuple[int, str]]) -> list[bytes]:
    """Every step of every request, interleaved across requests as many pipelines would be."""
    return [
        json.dumps(contract.report_body(plate, "silver", request_id, step)).encode()
        for step in contract.STEPS
        for request_id, plate in requests
    ]


def publish_all(app, nats_url: str, bodies: list[bytes]) -> None:
    async def main():
        nc = await nats.connect(nats_url)
        js = nc.jetstream()
        await ensure_stream(js, app)
        for body in bodies:
            await js.publish(contract.STATUS_SUBJECT, body)
        await nc.close()

    asyncio.run(main())


def time_bridges(app, bridges: int, expected_events: int) -> float:
    """Seconds from the first report applied to the last: the bridges' connecting and
    subscribing at start is not part of their rate."""
    workers = [NatsWorker(app, relay=False, bridge=True) for _ in range(bridges)]
    for worker in workers:
        worker.start()
    step_events = select(RequestEvent.created_at).where(RequestEvent.step.is_not(None))
    with app.app_context():
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            count = db.session.scalar(select(func.count()).select_from(step_events.subquery()))
            db.session.rollback()
            if count >= expected_events:
                break
            time.sleep(0.2)
        first = db.session.scalar(select(func.min(step_events.subquery().c.created_at)))
        last = db.session.scalar(select(func.max(step_events.subquery().c.created_at)))
    for worker in workers:
        worker.stop()
    # The first report's own time is not in (last - first): count the reports after it.
    return (last - first).total_seconds() * expected_events / (expected_events - 1)


def time_plain_sql(app, requests: list[tuple[int, str]]) -> float:
    """The floor: the bridge's writes for every report, as bare SQL statements."""
    engine = db.engine
    lock = " FOR UPDATE" if engine.dialect.name == "postgresql" else ""
    started = time.perf_counter()
    for step in contract.STEPS:
        status = "provisioned" if step == "provisioned" else "provisioning"
        for request_id, _ in requests:
            with engine.begin() as conn:
                conn.execute(
                    text(f"SELECT id, status, version FROM requests WHERE id = :id{lock}"),
                    {"id": request_id},
                )
                conn.execute(
                    text("UPDATE provisioning_targets SET step = :step WHERE request_id = :id"),
                    {"step": step, "id": request_id},
                )
                conn.execute(
                    text(
                        "UPDATE requests SET status = :status, version = version + 1 WHERE id = :id"
                    ),
                    {"status": status, "id": request_id},
                )
                conn.execute(
                    text(
                        "INSERT INTO request_events (request_id, created_at, from_status,"
                        " to_status, step, cluster) VALUES (:id, CURRENT_TIMESTAMP, 'approved',"
                        " :status, :step, 'silver')"
                    ),
                    {"id": request_id, "status": status, "step": step},
                )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    total = args.requests * len(contract.STEPS)
    results = {}
    for label, bridges in (("1 bridge", 1), ("2 bridges", 2), ("plain SQL", 0)):
        with common.database(args.database) as url, common.nats_server() as nats_url:
            app = common.make_app(url, nats_url)
            requests = approved_requests(app, args.requests)
            if bridges:
                publish_all(app, nats_url, reports(requests))
                seconds = time_bridges(app, bridges, total)
            else:
                with app.app_context():
                    seconds = time_plain_sql(app, requests)
            with app.app_context():
                steps = (
                    db.session.scalar(
                        select(func.count())
                        .select_from(ProvisioningTarget)
                        .where(ProvisioningTarget.step == "provisioned")
                    )
                    if bridges
                    else args.requests
                )
            assert steps == args.requests, f"{label}: {steps} of {args.requests} provisioned"
            results[label] = total / seconds

    print(
        f"bridge throughput, {total} status reports ({args.requests} requests x 8 steps), "
        f"on {args.database}"
    )
    print(f"machine: {common.machine()}")
    floor = results["plain SQL"]
    for label, rate in results.items():
        print(f"{label:<10} {rate:>8.0f} reports/s  ({rate / floor:.0%} of plain SQL)")


if __name__ == "__main__":
    main()
