"""Memory and CPU of each process kind, as deploy/ runs them: the figures behind its requests
and limits (docs/deploy.md).

Makes a PostgreSQL database, migrates it (``flask --app registry init-db``, as the init Job does)
and seeds it (bench/seed.py), starts an SMTP sink and (unless ``--nats-url``) a nats-server, then
runs the three processes of a deployment with ``REGISTRY_ENV=production``:

  web          gunicorn -w 2 wsgi:app, REGISTRY_RUN_BACKGROUND=false (the master and 2 workers)
  worker       flask --app registry worker (relay, bridge, mail sender, stuck checker)
  provisioner  reference-provisioner (the reference provisioner, its git repository)

It reads each process tree's resident memory (VmRSS, /proc/PID/status, summed over the tree)
and CPU time (utime + stime, /proc/PID/stat) twice a second through three phases: idle after
start; load (8 signed-in clients reading the busiest pages while a super admin approves a
pending request every ``--approve-every`` seconds, each one reaching the provisioner, git and
email); idle again. It prints, per kind and phase, the peak RSS and the CPU in cores (the mean
over the phase and the busiest second).

    python bench/footprint.py                       # 5,000 products, 60 s of load
    python bench/footprint.py --products 20000 --seconds 120 --nats-url nats://127.0.0.1:4222
"""

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import http.client

import psycopg

from bench import common, seed
from bench.pages import load, sign_in
from registry.provisioning import embedded

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def tree(root: int) -> list[int]:
    """``root`` and every process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def sample(pid: int) -> tuple[int, float] | None:
    """(RSS in KiB, CPU seconds) of one process, or None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        statm = Path(f"/proc/{pid}/statm").read_text().split()
    except OSError:
        return None
    return int(statm[1]) * PAGE_KB, (int(fields[11]) + int(fields[12])) / TICKS


class Sampler(threading.Thread):
    """Every half second: per kind, the RSS of each process of its tree and their CPU seconds."""

    def __init__(self, roots: dict[str, int]):
        super().__init__(daemon=True)
        self.roots = roots
        self.rows: list[tuple[float, str, list[int], float]] = []
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            now = time.monotonic()
            for kind, root in self.roots.items():
                found = [s for s in map(sample, tree(root)) if s]
                self.rows.append((now, kind, [r for r, _ in found], sum(c for _, c in found)))

    def summary(self, kind: str, began: float, ended: float) -> dict:
        rows = [r for r in self.rows if r[1] == kind and began <= r[0] <= ended]
        peak_tree = max(sum(r[2]) for r in rows)
        peak_process = max(max(r[2]) for r in rows)
        mean = (rows[-1][3] - rows[0][3]) / (rows[-1][0] - rows[0][0])
        busiest = max(
            (b[3] - a[3]) / (b[0] - a[0])
            for a, b in zip(rows, rows[2:], strict=False)  # one-second windows
        )
        return {
            "processes": len(rows[-1][2]),
            "rss_mib": peak_tree / 1024,
            "largest_process_mib": peak_process / 1024,
            "cpu_mean": mean,
            "cpu_peak": busiest,
        }


@contextlib.contextmanager
def smtp_sink():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    port = embedded.free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@contextlib.contextmanager
def nats(url: str | None):
    if url:
        yield url
    else:
        with common.nats_server() as started:
            yield started


@contextlib.contextmanager
def deployment(env: dict, port: int, workers: int):
    if not (BIN / "gunicorn").exists():
        sys.exit("needs gunicorn: pip install -e '.[server]'")
    commands = {
        "web": [str(BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}", "wsgi:app"],
        "worker": [str(BIN / "flask"), "--app", "registry", "worker"],
        "provisioner": [str(BIN / "reference-provisioner")],
    }
    started = {
        kind: subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        for kind, command in commands.items()
    }
    try:
        embedded.wait_for_port(port, timeout=30)
        yield {kind: process.pid for kind, process in started.items()}
    finally:
        for process in started.values():
            process.terminate()
        for process in started.values():
            process.wait(timeout=30)


def approve(host: str, cookie: str, ids: list[int], every: float, until: float) -> list[int]:
    """POST a decision for each pending request in turn, one every ``every`` seconds."""
    answers = []
    conn = http.client.HTTPConnection(host, timeout=30)
    for request_id in ids:
        if time.monotonic() > until:
            break
        conn.request(
            "POST",
            f"/admin/requests/{request_id}/decision",
            urllib.parse.urlencode({"decision": "approve"}),
            {"Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie},
        )
        response = conn.getresponse()
        response.read()
        answers.append(response.status)
        time.sleep(every)
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=60, help="length of the load phase")
    parser.add_argument("--idle", type=float, default=20, help="length of each idle phase")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--approve-every", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--nats-url", help="a NATS with JetStream; default: one of our own")
    args = parser.parse_args()
    print(common.machine())

    with (
        common.database("postgres") as url,
        smtp_sink() as smtp_port,
        nats(args.nats_url) as nats_url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        env = {
            **os.environ,
            "REGISTRY_ENV": "production",
            "REGISTRY_SECRET_KEY": os.urandom(32).hex(),
            "REGISTRY_SQLALCHEMY_DATABASE_URI": url,
            "REGISTRY_NATS_URL": nats_url,
            # gunicorn's control socket goes under $HOME; the image sets HOME=/tmp too.
            "HOME": tmp,
            "REGISTRY_MAIL_SERVER": "127.0.0.1",
            "REGISTRY_MAIL_PORT": str(smtp_port),
            "REGISTRY_PASSWORD_LOGIN": "true",
            "REGISTRY_RUN_BACKGROUND": "false",
            "REGISTRY_PROVISIONER_GITOPS_REPO": f"{tmp}/gitops",
            "REGISTRY_WTF_CSRF_ENABLED": "false",
            "REGISTRY_LOG_LEVEL": "WARNING",
            # A stream of its own, so a shared NATS (--nats-url) keeps its other streams.
            "REGISTRY_NATS_STREAM": "FOOTPRINT",
        }
        subprocess.run(
            [str(BIN / "flask"), "--app", "registry", "init-db"], env=env, cwd=ROOT, check=True
        )
        made = seed.seed(url, args.products, pending=max(args.products // 10, 10))
        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            pending = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM requests WHERE status = 'pending' AND type = 'create'"
                    " ORDER BY id"
                )
            ]
        print(
            f"seeded {made['products']:,} products, {made['requests']:,} requests, "
            f"{made['events']:,} events; {len(pending)} pending create requests"
        )

        port = embedded.free_port()
        with deployment(env, port, args.workers) as roots:
            host = f"127.0.0.1:{port}"
            sampler = Sampler(roots)
            sampler.start()
            phases = {}
            time.sleep(5)  # past the start: imports, migrations check, connections
            began = time.monotonic()
            time.sleep(args.idle)
            phases["idle"] = (began, time.monotonic())

            admin = sign_in(host, made["admin"])
            paths = [
                "/admin/queue",
                "/history",
                "/history?status=provisioned",
                f"/history?q={made['plate']}",
                f"/products/{made['plate']}",
                f"/requests/{made['request_id']}",
            ]
            began = time.monotonic()
            until = began + args.seconds
            decided: list[int] = []
            approver = threading.Thread(
                target=lambda: decided.extend(
                    approve(host, admin, pending, args.approve_every, until)
                )
            )
            approver.start()
            served, errors = 0, []
            while time.monotonic() < until:
                for path in paths:
                    seconds = min(5.0, until - time.monotonic())
                    if seconds <= 0:
                        break
                    _, latencies, bad = load(host, path, admin, args.clients, seconds)
                    served += len(latencies)
                    errors.extend(bad)
            approver.join()
            phases["load"] = (began, time.monotonic())

            began = time.monotonic()
            time.sleep(args.idle)
            phases["after"] = (began, time.monotonic())
            sampler.stopping.set()
            sampler.join()

        with psycopg.connect(url.replace("+psycopg", "")) as conn:
            provisioned = conn.execute(
                "SELECT count(*) FROM requests WHERE status = 'provisioned' AND id = ANY(%s)",
                (pending[: len(decided)],),
            ).fetchone()[0]
            mails = conn.execute(
                "SELECT status, count(*) FROM outbox_emails GROUP BY status ORDER BY status"
            ).fetchall()

    print(
        f"load: {served:,} pages by {args.clients} clients ({len(errors)} not 200), "
        f"{len(decided)} approvals ({sum(s != 303 for s in decided)} not 303), "
        f"{provisioned} of them provisioned; outbox emails {dict(mails)}"
    )
    print(f"gunicorn workers: {args.workers}; RSS = peak of the sum over the process tree")
    print(
        f"{'kind':<12} {'phase':<6} {'procs':>5} {'RSS MiB':>8} {'largest':>8} "
        f"{'CPU mean':>9} {'CPU peak':>9}"
    )
    for kind in roots:
        for phase, (began, ended) in phases.items():
            s = sampler.summary(kind, began, ended)
            print(
                f"{kind:<12} {phase:<6} {s['processes']:>5} {s['rss_mib']:>8.0f} "
                f"{s['largest_process_mib']:>8.0f} {s['cpu_mean']:>9.3f} {s['cpu_peak']:>9.2f}"
            )


if __name__ == "__main__":
    main()
