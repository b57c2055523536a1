"""``rpi-async echo``/``query`` failures: one line, exit 2, saying which failure it was.

The peers here are single-connection loopback sockets in a thread, each misbehaving in
one way (nothing listening, silent, TLS, A-ABORT, hang-up); every socket has a timeout.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rpi_async.cli import app
from rpi_async.cli import commands as _commands  # noqa: F401  (registers the commands)
from tests.cli.cli_support import assert_one_line_error
from tests.ops.ops_certs import make_pki

pytestmark = pytest.mark.network

A_ABORT = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0])  # A-ABORT, source service-provider

Behaviour = Callable[[socket.socket], None]


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


class OnePeer:
    """Accepts connections on 127.0.0.1, one at a time, and hands each to ``behaviour``."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(20)
        self.port = int(self.listener.getsockname()[1])
        self._behaviour = behaviour
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # closed
                return
            with conn:
                conn.settimeout(20)
                with contextlib.suppress(OSError):
                    self._behaviour(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.listener.close()
        self._thread.join(30)


@pytest.fixture
def peer() -> Iterator[Callable[[Behaviour], OnePeer]]:
    peers: list[OnePeer] = []

    def start(behaviour: Behaviour) -> OnePeer:
        peers.append(OnePeer(behaviour))
        return peers[-1]

    yield start
    for p in peers:
        p.close()


def _read_some(conn: socket.socket) -> None:
    conn.recv(65536)


def _silent(conn: socket.socket) -> None:
    _read_some(conn)
    conn.recv(1)  # until the client gives up


def _aborts(conn: socket.socket) -> None:
    _read_some(conn)
    conn.sendall(A_ABORT)
    conn.recv(1)


def _hangs_up(conn: socket.socket) -> None:
    _read_some(conn)


def _http(conn: socket.socket) -> None:
    _read_some(conn)
    conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("behaviour", "fragment"),
    [
        (_silent, "no answer from 127.0.0.1:{port} to the association request within 1 s"),
        (_aborts, "association aborted by 127.0.0.1:{port} (A-ABORT)"),
        (_hangs_up, "127.0.0.1:{port} closed the connection without answering"),
        (_http, "127.0.0.1:{port} does not speak DICOM (first byte 0x48)"),
    ],
)
def test_misbehaving_peers_are_told_apart(
    peer: Callable[[Behaviour], OnePeer], behaviour: Behaviour, fragment: str
) -> None:
    port = peer(behaviour).port
    result = _run("echo", "127.0.0.1", str(port), "--timeout", "1")
    assert_one_line_error(*result, fragment.format(port=port))


def test_tls_server(peer: Callable[[Behaviour], OnePeer], tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)

    def tls(conn: socket.socket) -> None:
        with context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False) as tls:
            tls.do_handshake()  # fails: the client sends an A-ASSOCIATE-RQ

    port = peer(tls).port
    result = _run("query", "127.0.0.1", str(port), "--patient-id", "X", "--timeout", "5")
    assert_one_line_error(*result, f"127.0.0.1:{port} answered in TLS")


def _entry_point(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "rpi_async", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_connection_refused() -> None:
    # A child process: pynetdicom leaks the socket of a refused connection.
    port = _closed_port()
    result = _entry_point("echo", "127.0.0.1", str(port), "--timeout", "5")
    assert_one_line_error(*result, f"connection refused by 127.0.0.1:{port}")


def test_unresolvable_host() -> None:
    result = _run("echo", "nosuchhost.invalid", "11112", "--timeout", "5")
    assert_one_line_error(*result, "cannot resolve host 'nosuchhost.invalid'")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["echo", "127.0.0.1", "70000"], "invalid port 70000"),
        (["echo", "127.0.0.1", "0"], "invalid port 0"),
        (["echo", "127.0.0.1", "11112", "--aet", "SEVENTEEN_CHARS_X"], "(--aet)"),
        (["echo", "127.0.0.1", "11112", "--aec", ""], "invalid AE title '' (--aec)"),
        (["query", "127.0.0.1", "11112", "--patient-id", "X", "--aec", "A\\B"], "(--aec)"),
    ],
)
def test_bad_arguments_are_refused_before_connecting(args: list[str], fragment: str) -> None:
    assert_one_line_error(*_run(*args), fragment)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["echo"], "Missing argument 'host'"),
        (["echo", "127.0.0.1", "eleven"], "Invalid value for 'port'"),
        (["serve", "--port", "x"], "Invalid value for '--port'"),
        (["no-such-command"], "No such command"),
    ],
)
def test_usage_errors_are_one_line_through_the_entry_point(args: list[str], fragment: str) -> None:
    code, out, err = _entry_point(*args)
    assert_one_line_error(code, out, err, fragment)
    assert "--help" in err
