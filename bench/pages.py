"""How fast the pages are with 100,000 products, beside a bare Flask + Jinja page in the same run.

Makes a PostgreSQL database (bench/seed.py: 100,000 products, about 118,000 requests and a
million events), serves the registry with gunicorn (2 workers, no background work) and the bare
page (bench/bare_app.py, a 25-row table) the same way, signs in over HTTP, then loads each page
with 8 concurrent clients for a few seconds (requests per second, p50, p95) and with one client
(its p95), right after loading the bare page the same way: a page's share is of that bare run.
Every answer must be a 200.

    python bench/pages.py --products 100000
    python bench/pages.py --database-url postgresql://.../registry_bench   # reuse a seeded one
"""

import argparse
import contextlib
import http.client
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, seed
from registry.provisioning import embedded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@contextlib.contextmanager
def served(app: str, port: int, env: dict):
    if not (BIN / "gunicorn").exists():
        sys.exit("needs gunicorn: pip install -e '.[server]'")
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-w", "2", "-b", f"127.0.0.1:{port}", app],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        embedded.wait_for_port(port, timeout=30)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


def sign_in(host: str, email: str) -> str:
    conn = http.client.HTTPConnection(host, timeout=30)
    body = urllib.parse.urlencode({"email": email, "password": "bench"})
    conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    assert response.status == 303, f"sign-in as {email}: {response.status}"
    return response.getheader("Set-Cookie").split(";", 1)[0]


def load(host: str, path: str, cookie: str, clients: int, seconds: float, headers=None):
    """``clients`` keep-alive connections asking for ``path`` for ``seconds``: latencies, errors.
    ``headers``: sent instead of the session cookie (an API token)."""
    headers = headers or {"Cookie": cookie}
    latencies: list[float] = []
    errors: list[int] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client():
        conn = http.client.HTTPConnection(host, timeout=30)
        mine, bad = [], []
        for _ in range(100_000):  # bounded, whatever the deadline
            if time.monotonic() > deadline:
                break
            began = time.perf_counter()
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - began)
            if response.status != 200:
                bad.append(response.status)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors.extend(bad)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return len(latencies) / elapsed, latencies, errors


def measure(host, path, cookie, clients, seconds, headers=None) -> dict:
    load(host, path, cookie, 1, 0.5, headers)  # warm: templates compiled, connections open
    rate, latencies, errors = load(host, path, cookie, clients, seconds, headers)
    _, alone, alone_errors = load(host, path, cookie, 1, max(seconds / 2, 1), headers)
    return {
        "rate": rate,
        "p50": statistics.median(latencies) * 1000,
        "p95": common.percentile(latencies, 95) * 1000,
        "alone_p50": statistics.median(alone) * 1000,
        "alone_p95": common.percentile(alone, 95) * 1000,
        "errors": errors + alone_errors,
    }


def pages(made: dict) -> list[tuple[str, str, str]]:
    """(label, who, path) of each page measured."""
    plate, name = made["plate"], made["name"].split()[0].lower()
    return [
        ("Review queue (2,000 pending)", "admin", "/admin/queue"),
        ("All requests, first page", "admin", "/history"),
        ("All requests, page 2,000", "admin", "/history?page=2000"),
        ("All requests, status provisioned", "admin", "/history?status=provisioned"),
        ("All requests, kind edit", "admin", "/history?type=edit"),
        ("All requests, cluster gold", "admin", "/history?cluster=gold"),
        ("All requests, ministry HLTH", "admin", "/history?ministry=HLTH"),
        ("All requests, search by plate", "admin", f"/history?q={plate}"),
        ("All requests, search by name", "admin", f"/history?q={name}"),
        ("All requests, search 'sante' (finds Santé)", "admin", "/history?q=sante"),
        ("All requests, search by contact email", "admin", f"/history?q={made['contact_email']}"),
        ("My products (60 products)", "busy", "/products"),
        ("A product page", "admin", f"/products/{plate}"),
        ("A request page", "admin", f"/requests/{made['request_id']}"),
    ]


def run(database_url: str, made: dict, clients: int, seconds: float) -> None:
    env = {
        "REGISTRY_SQLALCHEMY_DATABASE_URI": database_url,
        "REGISTRY_SECRET_KEY": "bench",
        "REGISTRY_RUN_BACKGROUND": "false",
        "REGISTRY_WTF_CSRF_ENABLED": "false",
        "REGISTRY_LOG_LEVEL": "WARNING",
    }
    with (
        served("wsgi:app", embedded.free_port(), env) as registry,
        served("bench.bare_app:app", embedded.free_port(), {}) as bare,
    ):
        cookies = {
            "admin": sign_in(registry, made["admin"]),
            "busy": sign_in(registry, made["busy"]),
        }
        # This machine's speed drifts within a run: each page is compared with the bare page
        # measured just before it, not with one measurement at the start.
        floors, rows = [], []
        for label, who, path in pages(made):
            floors.append(measure(bare, "/", "", clients, seconds))
            m = measure(registry, path, cookies[who], clients, seconds)
            rows.append((label, {**m, "share": m["rate"] / floors[-1]["rate"]}))
        floor = sorted(floors, key=lambda f: f["rate"])[len(floors) // 2]  # the median run
        rows.insert(0, ("Bare Flask + Jinja, 25 rows", {**floor, "share": 1.0}))

    print(
        f"pages with {made['products']:,} products, {made['requests']:,} requests,"
        f" {made['events']:,} events; gunicorn -w 2; {clients} clients, {seconds:g} s a page"
    )
    print(f"machine: {common.machine()}")
    print(
        f"bare page: {min(f['rate'] for f in floors):.0f} to {max(f['rate'] for f in floors):.0f}"
        " req/s across the run; each page's share is of the bare run just before it"
    )
    print("| page | req/s (8 clients) | % of bare | p50 ms | p95 ms | one user p95 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, m in rows:
        share = 100 * m["share"]
        print(f"| {label} | {m['rate']:.0f} | {share:.0f}% | {m['p50']:.1f} | {m['p95']:.1f} |"
              f" {m['alone_p95']:.1f} |")  # fmt: skip
        if m["errors"]:
            print(f"|   non-200 answers: {sorted(set(m['errors']))} ({len(m['errors'])}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--database-url", help="a database bench/seed.py already filled")
    args = parser.parse_args()
    if args.database_url:
        import psycopg

        url = args.database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT p.licence_plate, p.name, (SELECT count(*) FROM products),"
                " (SELECT count(*) FROM requests), (SELECT count(*) FROM request_events)"
                " FROM products p WHERE p.status = 'active' ORDER BY p.id LIMIT 1"
            ).fetchone()
            request_id = conn.execute(
                "SELECT id FROM requests WHERE status = 'provisioned' ORDER BY id LIMIT 1"
            ).fetchone()[0]
        made = {
            "plate": row[0], "name": row[1], "products": row[2], "requests": row[3],
            "events": row[4], "request_id": request_id, "admin": seed.ADMIN, "busy": seed.BUSY,
            "contact_email": "lead5000@bench.example",
        }  # fmt: skip
        run(args.database_url, made, args.clients, args.seconds)
        return
    with common.database("postgres") as url:
        common.make_app(url, "nats://127.0.0.1:1")  # migrated, reference data
        made = seed.seed(url, args.products)
        print(f"seeded in {made['seconds']:.0f} s")
        run(url, made, args.clients, args.seconds)


if __name__ == "__main__":
    main()
