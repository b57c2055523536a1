"""systemd notification over a fake ``NOTIFY_SOCKET``: READY once the port is bound,
RELOADING/READY around SIGHUP, the watchdog, STOPPING; for one server and for a
supervisor of workers (which alone speaks for the group)."""

from __future__ import annotations

import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpi_async.ops.notify import Notifier
from tests.conftest import make_db
from tests.serve_process import ServeProcess

pytestmark = [pytest.mark.network, pytest.mark.slow]


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[socket.socket]:
    """The service manager's end: a datagram socket the server sends to."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(60)
    try:
        yield sock
    finally:
        sock.close()


def next_message(sock: socket.socket, key: str) -> dict[str, str]:
    """The next datagram that assigns ``key`` (watchdog pings in between are skipped)."""
    for _ in range(1000):
        data = sock.recv(4096).decode()
        fields = dict(line.split("=", 1) for line in data.splitlines())
        if key in fields:
            return fields
    raise AssertionError(f"no {key}")


def listens(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_notify_protocol(tmp_path: Path, manager: socket.socket, workers: int) -> None:
    db = make_db(tmp_path / "live.sqlite3")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["--db", str(db), "--port", str(port), "--engine", "native"]
    server = ServeProcess(
        [*args, "--workers", str(workers)],
        env={"NOTIFY_SOCKET": manager.getsockname(), "WATCHDOG_USEC": "400000"},
    )
    try:
        ready = next_message(manager, "READY")
        assert ready["READY"] == "1"
        assert listens(port)  # READY only once the port is bound
        assert f"port {port}" in ready["STATUS"]
        assert next_message(manager, "WATCHDOG") == {"WATCHDOG": "1"}
        server.proc.send_signal(signal.SIGHUP)
        reloading = next_message(manager, "RELOADING")
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert 0 < now - int(reloading["MONOTONIC_USEC"]) < 60_000_000
        again = next_message(manager, "READY")
        assert again["STATUS"].startswith("serving")
        server.wait_for("database reopened", count=workers, timeout=10)  # every worker
        server.proc.send_signal(signal.SIGTERM)
        assert next_message(manager, "STOPPING") == {"STOPPING": "1", "STATUS": "stopping"}
    finally:
        code = server.stop()
    assert code == 0


def test_without_socket_nothing_is_sent() -> None:
    notifier = Notifier.from_environ({})
    assert not notifier.enabled
    notifier.ready("x")  # does nothing, raises nothing
    assert Notifier.from_environ({"NOTIFY_SOCKET": "@abstract"}).address == "\0abstract"
    other = {"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert Notifier.from_environ(other).watchdog_interval is None  # meant for another pid
