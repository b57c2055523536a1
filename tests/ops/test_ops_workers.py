"""``--workers N`` as one service: one metrics port for the group (a ``worker`` label on
every sample), one ``/readyz``; SIGHUP reaches every worker; a killed worker comes back,
and a failed restart is logged and retried."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
from pathlib import Path

import pytest

from rpi_async.ops.workers import labelled, merge_expositions, parse_ready_line, ready_line
from tests.conftest import make_db
from tests.ops.ops_support import http_get
from tests.serve_process import ServeProcess

pytestmark = [pytest.mark.network, pytest.mark.slow]

STARTED = r"worker (\d) started \(pid (\d+)\)"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while http_get(port, "/readyz")[0] != 200:
        assert time.monotonic() < deadline, http_get(port, "/readyz")
        time.sleep(0.1)


def test_merge_labels_every_sample_and_keeps_families_together() -> None:
    def exposition(a: int, b: int) -> bytes:
        return (
            f"# HELP a_total A\n# TYPE a_total counter\na_total {a}\n"
            f'# HELP b B\n# TYPE b gauge\nb{{x="1"}} {b}\n'
        ).encode()

    one, two = exposition(1, 2), exposition(3, 4)
    assert merge_expositions({0: one, 1: two}).splitlines() == [
        "# HELP a_total A",
        "# TYPE a_total counter",
        'a_total{worker="0"} 1',
        'a_total{worker="1"} 3',
        "# HELP b B",
        "# TYPE b gauge",
        'b{worker="0",x="1"} 2',
        'b{worker="1",x="1"} 4',
    ]
    assert labelled("c{} 1", 2) == 'c{worker="2"} 1'
    assert parse_ready_line(ready_line(9464)) == (True, 9464)
    assert parse_ready_line(ready_line(None)) == (True, None)
    assert parse_ready_line(b"Traceback\n") == (False, None)


def test_workers_are_one_service(tmp_path: Path) -> None:
    db = make_db(tmp_path / "live.sqlite3")
    metrics = free_port()
    server = ServeProcess(
        ["--db", str(db), "--port", "0",
         "--engine", "native", "--workers", "2", "--metrics-port", str(metrics)]
    )  # fmt: skip
    try:
        pids = {}
        for _ in (0, 1):
            match = server.wait_for(STARTED)
            pids[int(match.group(1))] = int(match.group(2))
        server.wait_for(r"rpi-async listening on .* 2 workers")
        assert http_get(metrics, "/healthz") == (200, "ok\n")
        wait_ready(metrics)
        text = http_get(metrics, "/metrics")[1]
        for worker in (0, 1):
            assert f'rpi_associations_active{{worker="{worker}"}} 0.0' in text
            assert f'rpi_worker_up{{worker="{worker}"}} 1' in text
        assert text.count("# TYPE rpi_associations_active gauge") == 1

        server.proc.send_signal(signal.SIGHUP)
        server.wait_for("database reopened", count=2)

        # A worker killed comes back; while its restart fails it is retried.
        moved = db.with_suffix(".away")
        os.replace(db, moved)
        os.kill(pids[1], signal.SIGKILL)
        server.wait_for(r"worker 1 \(pid \d+\) exited with status -9")
        server.wait_for(r"worker 1 failed to start .*; retrying in 1 s")
        status, body = http_get(metrics, "/readyz")
        assert status == 503
        assert "worker" in body or "database" in body
        os.replace(moved, db)
        match = server.wait_for(r"worker 1 started \(pid (\d+)\)")
        assert int(match.group(1)) != pids[1]
        wait_ready(metrics)
        text = http_get(metrics, "/metrics")[1]
        assert re.search(r'rpi_worker_restarts_total\{worker="1"\} 1\b', text)
        assert 'rpi_worker_up{worker="1"} 1' in text
        assert server.proc.poll() is None
    finally:
        code = server.stop()
    assert code == 0
