"""Does the time to refuse a sign-in tell whether an account exists?

Serves the registry with gunicorn (1 worker, the production password hash: scrypt) on a fresh
PostgreSQL database over HTTP, and times 40 sign-ins of each kind: a known account with a wrong
password, an unknown email, a deactivated account with its right password, an account made by
single sign-on (no password), and a right password. The rate limits are raised for the run.

    python bench/sign_in_timing.py
"""

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common
from registry.auth import services
from registry.auth.models import Role
from registry.extensions import db
from registry.provisioning import embedded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def attempt(host: str, email: str, password: str) -> tuple[float, int]:
    conn = http.client.HTTPConnection(host, timeout=30)
    body = urllib.parse.urlencode({"email": email, "password": password})
    began = time.perf_counter()
    conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - began
    conn.close()
    return elapsed, response.status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    if not (BIN / "gunicorn").exists():
        sys.exit("needs gunicorn: pip install -e '.[server]'")
    with common.database("postgres") as url:
        app = common.make_app(url, "nats://127.0.0.1:1")
        app.config["PASSWORD_HASH_METHOD"] = "scrypt"  # noqa: S105 - a method, as in production
        with app.app_context():
            services.create_user("known@bench.example", "Known", "right-password", Role.USER)
            services.create_user("gone@bench.example", "Gone", "right-password", Role.USER)
            services.set_active("gone@bench.example", False)
            services.create_user("sso@bench.example", "Single Sign-On", None, Role.USER)
            db.session.commit()
        port = embedded.free_port()
        env = {
            **os.environ,
            "REGISTRY_SQLALCHEMY_DATABASE_URI": url,
            "REGISTRY_SECRET_KEY": "bench",
            "REGISTRY_RUN_BACKGROUND": "false",
            "REGISTRY_WTF_CSRF_ENABLED": "false",
            "REGISTRY_LOGIN_LIMIT_PER_ACCOUNT": "100000 per minute",
            "REGISTRY_LOGIN_LIMIT_PER_ADDRESS": "100000 per minute",
            "REGISTRY_LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "-w", "1", "-b", f"127.0.0.1:{port}", "wsgi:app"],
            env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            embedded.wait_for_port(port, timeout=30)
            host = f"127.0.0.1:{port}"
            kinds = [
                ("known account, wrong password", "known@bench.example", "wrong", 422),
                ("unknown email", "nobody@bench.example", "wrong", 422),
                ("deactivated account, right password", "gone@bench.example", "right-password",
                 422),
                ("single sign-on account (no password)", "sso@bench.example", "wrong", 422),
                ("right password (signs in)", "known@bench.example", "right-password", 303),
            ]  # fmt: skip
            attempt(host, "warm@bench.example", "x")
            times: dict[str, list[float]] = {label: [] for label, *_ in kinds}
            for _ in range(args.rounds):  # interleaved, so drift hits every kind alike
                for label, email, password, expected in kinds:
                    elapsed, status = attempt(host, email, password)
                    assert status == expected, f"{label}: {status}"
                    times[label].append(elapsed * 1000)
        finally:
            server.terminate()
            server.wait(timeout=20)
    print(f"sign-in over HTTP, gunicorn -w 1, scrypt, PostgreSQL; {args.rounds} rounds")
    print(f"machine: {common.machine()}")
    print("| attempt | median ms | p95 ms |")
    print("| --- | ---: | ---: |")
    for label, values in times.items():
        print(f"| {label} | {statistics.median(values):.1f} |"
              f" {common.percentile(values, 95):.1f} |")  # fmt: skip


if __name__ == "__main__":
    main()
