"""``--workers N`` with the operations features: metrics ports P, P+1, …; SIGHUP reaches
every worker and the parent survives it."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest

from tests.conftest import make_db
from tests.ops.ops_support import http_get
from tests.serve_process import ServeProcess

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
    server = ServeProcess(
        ["--db", str(db), "--port", "0",
         "--engine", "native", "--workers", "2", "--metrics-port", str(metrics)]
    )  # fmt: skip
    try:
        server.wait_for(r"rpi-async listening on .* 2 workers")
        for port in (metrics, metrics + 1):
            assert http_get(port, "/healthz") == (200, "ok\n")
            assert http_get(port, "/readyz")[0] == 200
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("database reopened", count=2)
        assert server.proc.poll() is None
    finally:
        code = server.stop()
    assert code == 0
