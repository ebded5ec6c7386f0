"""The product page and the change form with usage on, at 100,000 products: one user's p50 and
p95 (the aim: p95 under 100 ms) and 8 clients' rate, in four layouts of the same run:

- usage off (no Prometheus set): the pages as they were before usage;
- Prometheus answering: a real ``prometheus`` holding two weeks of the product's history
  (backfilled with promtool, as the tests do), each process keeping what it read for
  ``USAGE_CACHE_SECONDS`` (60 s);
- Prometheus answering, nothing kept (``USAGE_CACHE_SECONDS=0``): every page asks Prometheus,
  the worst a page can cost;
- Prometheus away (its port closed): the pages say why there is no usage.

Seeds a PostgreSQL database (bench/seed.py) unless ``--database-url`` names one already seeded.

    python bench/usage_pages.py --products 100000
    python bench/usage_pages.py --database-url postgresql://.../registry_bench
"""

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, seed
from bench.pages import measure, served, sign_in
from registry.provisioning import embedded
from tests.usage_source import Prometheus, Workload

AIM_MS = 100.0


def product_of(url: str) -> dict:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        plate, products = conn.execute(
            "SELECT p.licence_plate, (SELECT count(*) FROM products)"
            " FROM products p WHERE p.status = 'active' ORDER BY p.id LIMIT 1"
        ).fetchone()
        clusters = [name for (name,) in conn.execute("SELECT name FROM clusters")]
    return {"plate": plate, "products": products, "clusters": clusters}


def run(url: str, product: dict, clients: int, seconds: float) -> list[tuple[str, str, dict]]:
    plate = product["plate"]
    workloads = [
        Workload(f"{plate}-prod", cpu=0.4, memory_gib=1.5, storage_used_gib=0.9,
                 storage_claim_gib=1.0),
        Workload(f"{plate}-dev", cpu=0.05, memory_gib=0.3, storage_used_gib=0.1,
                 storage_claim_gib=1.0),
        Workload(f"{plate}-test", cpu=0.1, memory_gib=0.5),
    ]  # fmt: skip
    paths = [
        ("A product page", f"/products/{plate}"),
        ("The change form", f"/products/{plate}/change"),
    ]
    closed = embedded.free_port()  # nothing listens here: Prometheus away
    base = {
        "REGISTRY_SQLALCHEMY_DATABASE_URI": url,
        "REGISTRY_SECRET_KEY": "bench",
        "REGISTRY_RUN_BACKGROUND": "false",
        "REGISTRY_WTF_CSRF_ENABLED": "false",
        "REGISTRY_LOG_LEVEL": "WARNING",
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        prometheus = Prometheus(Path(tmp), embedded.free_port(), workloads)
        try:

            def every(address: str) -> str:
                return json.dumps(dict.fromkeys(product["clusters"], address))

            layouts = [
                ("usage off", {}),
                ("Prometheus answering", {"REGISTRY_USAGE_PROMETHEUS_URLS": every(prometheus.url)}),
                (
                    "Prometheus answering, nothing kept",
                    {
                        "REGISTRY_USAGE_PROMETHEUS_URLS": every(prometheus.url),
                        "REGISTRY_USAGE_CACHE_SECONDS": "0",
                    },
                ),
                (
                    "Prometheus away",
                    {"REGISTRY_USAGE_PROMETHEUS_URLS": every(f"http://127.0.0.1:{closed}")},
                ),
            ]
            for layout, env in layouts:
                with served("wsgi:app", embedded.free_port(), {**base, **env}) as host:
                    cookie = sign_in(host, seed.ADMIN)
                    for label, path in paths:
                        rows.append((label, layout, measure(host, path, cookie, clients, seconds)))
        finally:
            prometheus.stop()
    return rows


def report(product: dict, rows, clients: int, seconds: float) -> None:
    print(
        f"usage pages with {product['products']:,} products; gunicorn -w 2; one user, then"
        f" {clients} clients, {seconds:g} s a page"
    )
    print(f"machine: {common.machine()}")
    print("| page | usage | one user p50 ms | one user p95 ms | req/s (8 clients) | aim |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for label, layout, m in rows:
        ok = "met" if m["alone_p95"] < AIM_MS else "MISSED"
        print(
            f"| {label} | {layout} | {m['alone_p50']:.1f} | {m['alone_p95']:.1f} |"
            f" {m['rate']:.0f} | {ok} |"
        )
        if m["errors"]:
            print(f"|   non-200 answers: {sorted(set(m['errors']))} ({len(m['errors'])}) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--database-url", help="a database bench/seed.py already filled")
    args = parser.parse_args()
    if not (shutil.which("prometheus") and shutil.which("promtool")):
        sys.exit("needs Debian's prometheus and promtool: scripts/install-prometheus")
    if args.database_url:
        product = product_of(args.database_url)
        report(product, run(args.database_url, product, args.clients, args.seconds),
               args.clients, args.seconds)  # fmt: skip
        return
    with common.database("postgres") as url:
        common.make_app(url, "nats://127.0.0.1:1")
        made = seed.seed(url, args.products)
        print(f"seeded in {made['seconds']:.0f} s")
        product = product_of(url)
        report(product, run(url, product, args.clients, args.seconds), args.clients, args.seconds)


if __name__ == "__main__":
    main()
