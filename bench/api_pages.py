"""/api/v1 at 100,000 products: a page of 50 products (the first, and one deep in by cursor),
one product, and a cluster's desired state, with a token over every product; one client's p50
and p95 (the aim for the list: p95 under 30 ms) and 8 clients' rate. gunicorn with 2 workers on
PostgreSQL, as production serves.

    python bench/api_pages.py --database-url postgresql+psycopg://.../registry_bench
    python bench/api_pages.py --products 100000      # seeds a database first (bench/seed.py)
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, seed
from bench.pages import measure, served
from registry.provisioning import embedded

AIM_MS = 30.0


def token_for(url: str) -> tuple[str, str, int]:
    """A read token over every product, made by the seeded super admin; a plate; a deep id."""
    from sqlalchemy import func, select

    from registry import create_app
    from registry.api import tokens
    from registry.api.models import Access, Scope
    from registry.auth import services as accounts
    from registry.extensions import db
    from registry.products.models import Product

    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench"})
    with app.app_context():
        admin = accounts.get_by_email(seed.ADMIN)
        _, secret = tokens.create("bench", Scope.ALL, Access.READ, admin, days=1)
        db.session.commit()
        plate = db.session.scalar(select(Product.licence_plate).order_by(Product.id).limit(1))
        deep = db.session.scalar(select(func.max(Product.id))) - 100
    return secret, plate, deep


def run(url: str, clients: int, seconds: float) -> None:
    secret, plate, deep = token_for(url)
    headers = {"Authorization": f"Bearer {secret}"}
    env = {
        "REGISTRY_SQLALCHEMY_DATABASE_URI": url,
        "REGISTRY_SECRET_KEY": "bench",
        "REGISTRY_RUN_BACKGROUND": "false",
        "REGISTRY_LOG_LEVEL": "WARNING",
        "REGISTRY_API_CALLS_PER_MINUTE": "0",  # the limit is not what is measured
    }
    paths = [
        ("products, first page of 50", "/api/v1/products?limit=50", True),
        ("products, a page of 50 deep in", f"/api/v1/products?limit=50&cursor={deep}", True),
        ("products, ministry HLTH", "/api/v1/products?limit=50&ministry=HLTH", True),
        ("one product", f"/api/v1/products/{plate}", False),
    ]
    with served("wsgi:app", embedded.free_port(), env) as host:
        rows = [(label, aim, measure(host, path, "", clients, seconds, headers))
                for label, path, aim in paths]  # fmt: skip
    print(
        f"/api/v1 with a token over every product; gunicorn -w 2; {clients} clients, {seconds:g} s"
    )
    print(f"machine: {common.machine()}")
    print(
        "| call | one client p50 ms | one client p95 ms | req/s (8 clients) | aim (p95 < 30 ms) |"
    )
    print("| --- | ---: | ---: | ---: | --- |")
    for label, aim, m in rows:
        verdict = ("met" if m["alone_p95"] < AIM_MS else "MISSED") if aim else ""
        print(f"| {label} | {m['alone_p50']:.1f} | {m['alone_p95']:.1f} | {m['rate']:.0f} |"
              f" {verdict} |")  # fmt: skip
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
        run(args.database_url, args.clients, args.seconds)
        return
    with common.database("postgres") as url:
        common.make_app(url, "nats://127.0.0.1:1")
        made = seed.seed(url, args.products)
        print(f"seeded in {made['seconds']:.0f} s")
        run(url, args.clients, args.seconds)


if __name__ == "__main__":
    main()
