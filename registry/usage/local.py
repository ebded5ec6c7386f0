"""A Prometheus on this machine for development (``flask dev``): Debian's ``prometheus``,
scraping the reference provisioner's simulated workload, so usage shows in the demo within a
minute of a product being provisioned. Started only when the binary is there."""

import atexit
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

SCRAPE = """global:
  scrape_interval: 15s
scrape_configs:
  - job_name: reference-provisioner
    static_configs:
      - targets: ["{target}"]
"""


def start(instance: Path, target: str, port: int) -> str | None:
    """Start Prometheus scraping ``target`` (host:port of /metrics); its URL, or None when the
    ``prometheus`` binary is missing. Stopped when this process exits."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    root = instance / "prometheus"
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / "prometheus.yml").write_text(SCRAPE.format(target=target))
    log = (root / "prometheus.log").open("a")
    process = subprocess.Popen(  # noqa: S603 - Debian's prometheus, fixed arguments
        [binary, f"--config.file={root / 'prometheus.yml'}",
         f"--storage.tsdb.path={root / 'data'}", "--storage.tsdb.retention.time=15d",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    atexit.register(process.terminate)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url + "/-/ready", timeout=1):  # noqa: S310 - loopback
                return url
        except (OSError, urllib.error.URLError):
            time.sleep(0.2)
    return None
