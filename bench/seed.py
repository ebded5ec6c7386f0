"""Fill a PostgreSQL database with a registry's worth of realistic data, fast (COPY).

For N products: about N/20 product-team users, a super admin and a support user; each product
with 2 or 3 contacts and its four namespaces; a create request for each (most provisioned, 3%
rejected, the newest pending), an edit for 18% of them (the newest pending), every request with
its timeline (about ten events when provisioned): for 100,000 products that is about 118,000
requests and a million events. A "busy" user owns 60 products. Everyone's password is "bench".

A database that does not exist yet is made, migrated and given the reference data first.

    python bench/seed.py --products 100000 \
        --database-url postgresql://postgres@127.0.0.1:5432/registry_bench
"""

import argparse
import json
import random
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from werkzeug.security import generate_password_hash

from registry.contract import STEPS
from registry.search import fold

ENVS = ("tools", "dev", "test", "prod")
WORDS = [
    "river",
    "permits",
    "salmon",
    "counts",
    "wildfire",
    "map",
    "school",
    "bus",
    "routes",
    "tax",
    "portal",
    "clinic",
    "wait",
    "times",
    "housing",
    "registry",
    "court",
    "booking",
    "ferry",
    "schedule",
    "park",
    "passes",
    "road",
    "weather",
    "grant",
    "tracker",
    "water",
    "licence",
    "forest",
    "inventory",
    "library",
    "card",
    "transit",
    "data",
    "voter",
    "lookup",
    "Santé",
    "Énergie",
    "Café",
    "Forêt",
    "Québec",
    "Pêche",
    "Mobilité",
    "Éducation",
]
FIRST = [
    "Ada",
    "Liam",
    "Noor",
    "Sam",
    "Maya",
    "Kai",
    "Ines",
    "Omar",
    "Zoe",
    "Ravi",
    "Lena",
    "Theo",
    "Aiko",
    "Jon",
    "Priya",
]
LAST = [
    "Lee",
    "Singh",
    "Tremblay",
    "Nguyen",
    "Roy",
    "Smith",
    "Gagnon",
    "Chen",
    "Brown",
    "Wilson",
    "Côté",
    "Martin",
]
REJECTION = "Ask for the ministry's sign-off."
BUSY, ADMIN, SUPPORT = "busy@bench.example", "admin@bench.example", "support@bench.example"


def plates(rng: random.Random, count: int) -> list[str]:
    seen: set[str] = set()
    while len(seen) < count:
        seen.add(rng.choice("abcdef") + f"{rng.getrandbits(20):05x}")
    return list(seen)


def seed(database_url: str, products: int, pending: int = 2000, seed_value: int = 1) -> dict:
    """Add ``products`` products and everything around them; returns what a benchmark needs."""
    rng = random.Random(seed_value)  # noqa: S311 - sample data, not secrets
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        ministries = [r[0] for r in conn.execute("SELECT code FROM ministries ORDER BY code")]
        clusters = [
            r[0] for r in conn.execute("SELECT name FROM clusters WHERE NOT is_lab ORDER BY name")
        ]
        options: dict[str, list[str]] = {}
        for name, kind in conn.execute("SELECT name, kind FROM quota_options ORDER BY sort_order"):
            options.setdefault(kind, []).append(name)
        first_user = (conn.execute("SELECT coalesce(max(id), 0) FROM users").fetchone()[0]) + 1

        now = datetime(2026, 11, 1)  # noqa: DTZ001 - the tables keep naive UTC
        start = now - timedelta(days=730)
        step = (now - start) / max(products, 1)
        password = generate_password_hash("bench", method="pbkdf2:sha256:1")

        # --- users: the staff, the busy owner, and the teams ---------------------------------
        team_count = max(products // 20, 10)
        users = [
            (ADMIN, "Ada Bench-Admin", "super_admin"),
            (SUPPORT, "Sue Bench-Support", "support"),
            (BUSY, "Bea Busy", "user"),
        ]
        users += [
            (f"user{i}@bench.example", f"{rng.choice(FIRST)} {rng.choice(LAST)}", "user")
            for i in range(team_count)
        ]
        user_ids = {email: first_user + i for i, (email, _, _) in enumerate(users)}
        admin_id, busy_id = user_ids[ADMIN], user_ids[BUSY]
        team_ids = [user_ids[e] for e, _, r in users if r == "user"]

        with conn.cursor() as cur:
            with cur.copy(
                "COPY users (id, email, name, password_hash, role, active, created_at) FROM STDIN"
            ) as copy:
                for email, name, role in users:
                    copy.write_row((user_ids[email], email, name, password, role, True, start))

            product_rows, contact_rows, namespace_rows, history_rows = [], [], [], []
            request_rows, event_rows = [], []
            contact_id = namespace_id = request_id = event_id = 0
            sample = {}
            all_plates = plates(rng, products)
            rejected_every = 33  # about 3% of creates
            edits_every = 5.5  # about 18% of products
            pending_creates, pending_edits = pending * 3 // 4, pending - pending * 3 // 4

            def event(rid, when, actor, from_status, to_status, note=None, step=None, cluster=None):
                nonlocal event_id
                event_id += 1
                event_rows.append(
                    (event_id, rid, when, actor, from_status, to_status, note, step, cluster,
                     when if step else None)
                )  # fmt: skip

            def provisioned_timeline(
                rid, when, requester, cluster, comment="Submitted for review."
            ):
                event(rid, when, requester, None, "pending", comment)
                event(rid, when + timedelta(hours=5), admin_id, "pending", "approved")
                for n, name in enumerate(STEPS):
                    status = "provisioned" if name == "provisioned" else "provisioning"
                    before = "approved" if n == 0 else "provisioning"
                    event(rid, when + timedelta(hours=5, seconds=n + 1), None, before, status,
                          None, name, cluster)  # fmt: skip

            for i in range(products):
                pid = i + 1
                plate = all_plates[i]
                created = start + step * i
                name = " ".join(rng.sample(WORDS, 2)).capitalize()[:40]
                ministry, cluster = rng.choice(ministries), rng.choice(clusters)
                requester = busy_id if i < 60 else rng.choice(team_ids)
                contacts = {
                    "owner": (BUSY if i < 60 else f"owner{pid}@bench.example"),
                    "primary_lead": f"lead{pid}@bench.example",
                    "secondary_lead": f"second{pid}@bench.example" if i % 2 else None,
                }
                data_contacts = {}
                for role, email in contacts.items():
                    if email is None:
                        data_contacts[role] = None
                        continue
                    contact_id += 1
                    first, last = rng.choice(FIRST), rng.choice(LAST)
                    contact_rows.append(
                        (contact_id, pid, role, first, last, email, user_ids.get(email))
                    )
                    history_rows.append(
                        (contact_id, pid, role, email, user_ids.get(email), created)
                    )
                    data_contacts[role] = {"first_name": first, "last_name": last, "email": email}
                quotas = {}
                for env in ENVS:
                    namespace_id += 1
                    chosen = {
                        k: rng.choice(v[:2]) if rng.random() > 0.7 else v[0]
                        for k, v in options.items()
                    }
                    quotas[env] = chosen
                    namespace_rows.append(
                        (namespace_id, pid, env, chosen["cpu"], chosen["memory"],
                         chosen["storage"], chosen["snapshot"])
                    )  # fmt: skip
                data = {
                    "name": name, "description": f"{name}: a service of {ministry}.",
                    "ministry": ministry, "cluster": cluster, "contacts": data_contacts,
                    "namespaces": quotas,
                }  # fmt: skip
                newest = products - i
                request_id += 1
                rid = request_id
                if newest <= pending_creates:
                    status, product_status = "pending", "requested"
                    request_rows.append(
                        (rid, pid, "create", "pending", requester, created, created, None,
                         json.dumps(data), None, None, None, None)
                    )  # fmt: skip
                    event(rid, created, requester, None, "pending", "Submitted for review.")
                elif i % rejected_every == 7:
                    status, product_status = "rejected", "not_created"
                    decided = created + timedelta(hours=3)
                    request_rows.append(
                        (rid, pid, "create", "rejected", requester, created, decided, None,
                         json.dumps(data), None, admin_id, decided, REJECTION)
                    )  # fmt: skip
                    event(rid, created, requester, None, "pending", "Submitted for review.")
                    event(
                        rid,
                        decided,
                        admin_id,
                        "pending",
                        "rejected",
                        "Ask for the ministry's sign-off.",
                    )
                else:
                    status, product_status = "provisioned", "active"
                    decided = created + timedelta(hours=5)
                    request_rows.append(
                        (rid, pid, "create", "provisioned", requester, created, decided, None,
                         json.dumps(data), None, admin_id, decided, None)
                    )  # fmt: skip
                    provisioned_timeline(rid, created, requester, cluster)
                    if i % edits_every < 1 and newest > pending_creates:
                        request_id += 1
                        eid = request_id
                        edited = created + timedelta(days=20)
                        changed = json.loads(json.dumps(data))
                        changed["namespaces"]["prod"]["cpu"] = options["cpu"][2]
                        if pending_edits > 0 and newest <= pending_creates + 12000:
                            pending_edits -= 1
                            product_status = "change_pending"
                            request_rows.append(
                                (eid, pid, "edit", "pending", requester, edited, edited,
                                 json.dumps(data), json.dumps(changed), None, None, None, None)
                            )  # fmt: skip
                            event(eid, edited, requester, None, "pending",
                                  "Needs review: prod CPU goes up.")  # fmt: skip
                        else:
                            request_rows.append(
                                (eid, pid, "edit", "provisioned", requester, edited, edited,
                                 json.dumps(data), json.dumps(changed), json.dumps(changed),
                                 admin_id, edited + timedelta(hours=5), None)
                            )  # fmt: skip
                            provisioned_timeline(eid, edited, requester, cluster,
                                                 "Needs review: prod CPU goes up.")  # fmt: skip
                product_rows.append(
                    (pid, plate, name, fold(name), data["description"], ministry, cluster,
                     product_status, requester, created)
                )  # fmt: skip
                if status == "provisioned" and "plate" not in sample:
                    sample = {"plate": plate, "request_id": rid, "name": name}

            for table, columns, rows in (
                ("products", "id, licence_plate, name, search_name, description, ministry_code,"
                 " cluster_name, status, created_by_id, created_at", product_rows),
                ("product_contacts", "id, product_id, role, first_name, last_name, email,"
                 " user_id", contact_rows),
                ("product_contact_history", "id, product_id, role, email, user_id, started_at",
                 history_rows),
                ("product_namespaces", "id, product_id, environment, cpu, memory, storage,"
                 " snapshot", namespace_rows),
                ("requests", "id, product_id, type, status, requested_by_id, created_at,"
                 " updated_at, original_data, requested_data, decision_data, decided_by_id,"
                 " decided_at, decision_comment, version", [(*r, 1) for r in request_rows]),
                ("request_events", "id, request_id, created_at, actor_id, from_status, to_status,"
                 " note, step, cluster, reported_at", event_rows),
            ):  # fmt: skip
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            for table in (
                "users", "products", "product_contacts", "product_contact_history",
                "product_namespaces", "requests", "request_events",
            ):  # fmt: skip
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" (SELECT max(id) FROM {table}))"
                )
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {
        "products": len(product_rows),
        "requests": len(request_rows),
        "events": len(event_rows),
        "contacts": len(contact_rows),
        "pending": sum(1 for r in request_rows if r[3] == "pending"),
        "seconds": time.perf_counter() - started,
        "busy": BUSY,
        "admin": ADMIN,
        "support": SUPPORT,
        "contact_email": "lead5000@bench.example",
        **sample,
    }


def prepare(database_url: str) -> None:
    """Make the database if it does not exist, then migrate it and add the reference data."""
    from bench import common

    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')
    common.make_app(database_url, "nats://127.0.0.1:1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--products", type=int, default=100_000)
    args = parser.parse_args()
    prepare(args.database_url)
    made = seed(args.database_url, args.products)
    print(json.dumps(made, indent=2, default=str))


if __name__ == "__main__":
    main()
