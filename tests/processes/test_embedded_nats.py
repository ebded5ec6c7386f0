"""The development nats-server dies with the command that started it, even after ``kill -9``,
and a stale one left on the same store is stopped before a new one starts."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from registry.provisioning import embedded
from tests.support import eventually

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PR_SET_PDEATHSIG is Linux's")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has not asked yet


def test_the_server_dies_when_its_parent_is_killed(tmp_path):
    script = (
        "import sys, time; from pathlib import Path; from registry.provisioning import embedded;"
        f"p, url = embedded.start(Path({str(tmp_path)!r}));"
        "print(p.pid, flush=True); time.sleep(60)"
    )
    with subprocess.Popen(  # noqa: S603 - the dev command, as a process of its own
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True
    ) as parent:
        server_pid = int(parent.stdout.readline())
        assert alive(server_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
    eventually(lambda: not alive(server_pid), timeout=10, message="nats-server outlived kill -9")


def test_a_stale_server_on_the_same_store_is_stopped_at_start(tmp_path):
    port = embedded.free_port()
    stale = subprocess.Popen(  # noqa: S603 - the server a crashed dev command left behind
        [embedded.binary(), "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp_path),
         "-P", str(tmp_path / embedded.PID_FILE)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    embedded.wait_for_port(port)
    eventually(lambda: (tmp_path / embedded.PID_FILE).exists(), timeout=5)
    process, _ = embedded.start(tmp_path)
    try:
        assert stale.wait(10) is not None  # stopped by the new start
        assert alive(process.pid)
    finally:
        process.terminate()
        process.wait(10)
