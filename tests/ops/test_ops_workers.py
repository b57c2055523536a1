"""``--workers N`` with the operations features: metrics ports P, P+1, …; SIGHUP reaches
every worker and the parent survives it."""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import make_db
from tests.ops.ops_support import http_get

pytestmark = [pytest.mark.network, pytest.mark.slow]


def free_port_pair() -> int:
    """A port P with P+1 free too (checked, then released: a small race is acceptable)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return int(port)
    raise RuntimeError("no two consecutive free ports")


def test_workers_metrics_ports_and_sighup(tmp_path: Path) -> None:
    db = make_db(tmp_path / "live.sqlite3")
    metrics = free_port_pair()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPI_ASYNC_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "rpi_async", "serve", "--db", str(db), "--port", "0",
         "--engine", "native", "--workers", "2", "--metrics-port", str(metrics)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_for(pattern: str, count: int = 1) -> None:
        seen = 0
        while seen < count:
            line = lines.get(timeout=60)
            assert line is not None, "server exited"
            seen += bool(re.search(pattern, line))

    try:
        wait_for(r"rpi-async listening on .* 2 workers")
        for port in (metrics, metrics + 1):
            assert http_get(port, "/healthz") == (200, "ok\n")
            assert http_get(port, "/readyz")[0] == 200
        proc.send_signal(signal.SIGHUP)
        wait_for("database reopened", count=2)
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        reader.join(10)
        assert proc.stderr is not None
        proc.stderr.close()
    assert code == 0
