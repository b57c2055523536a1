"""DICOM over TLS for both engines: pynetdicom and DCMTK clients, mutual TLS."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpi_async.config import Settings
from rpi_async.errors import ConfigError
from rpi_async.ops.tls import server_context
from tests.conftest import RunningServer, dcmtk, server_settings
from tests.ops.ops_certs import Pki, make_pki
from tests.ops.ops_support import OpsServerThread, raw_associate

pytestmark = pytest.mark.network
ECHOSCU = dcmtk("echoscu")
needs_dcmtk = pytest.mark.skipif(ECHOSCU is None, reason="DCMTK echoscu not installed")
A_ASSOCIATE_RQ_START = b"\x01\x00\x00\x00\x00\x44"  # PDU type 1, length 68
TLS_ALERT = b"\x15"  # TLS record content type 21


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def client_context(pki: Pki, *, with_cert: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    if with_cert:
        ctx.load_cert_chain(pki.client_cert, pki.client_key)
    return ctx


def tls_settings(sample_db: Path, engine: str, pki: Pki, *, mutual: bool) -> Settings:
    return server_settings(
        sample_db,
        engine,
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_ca=pki.ca if mutual else None,
        tls_require_client_cert=mutual,
    )


@pytest.fixture
def tls_server(sample_db: Path, engine: str, pki: Pki) -> Iterator[RunningServer]:
    thread = OpsServerThread(tls_settings(sample_db, engine, pki, mutual=False))
    srv = thread.start()
    yield srv
    thread.stop()


@pytest.fixture
def mtls_server(sample_db: Path, engine: str, pki: Pki) -> Iterator[RunningServer]:
    thread = OpsServerThread(tls_settings(sample_db, engine, pki, mutual=True))
    srv = thread.start()
    yield srv
    thread.stop()


def echoscu(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    assert ECHOSCU is not None
    return subprocess.run(
        [ECHOSCU, "-aec", "RPI_SCP", *args, "127.0.0.1", str(port)],
        env={**os.environ, "TCP_NODELAY": "1"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_pynetdicom_scu_over_tls(tls_server: RunningServer, pki: Pki) -> None:
    assoc = raw_associate(
        tls_server.port, tls_args=(client_context(pki, with_cert=False), "localhost")
    )
    try:
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0
    finally:
        assoc.release()
    assert tls_server.stats.echoes == 1


def test_plain_tcp_client_gets_no_dicom(tls_server: RunningServer) -> None:
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=10) as sock:
        sock.sendall(A_ASSOCIATE_RQ_START + bytes(64))
        try:
            reply = sock.recv(16)
        except ConnectionResetError:
            reply = b""
    assert reply[:1] in (b"", TLS_ALERT)  # never an A-ASSOCIATE-AC (0x02) or -RJ (0x03)
    assert tls_server.stats.associations_accepted == 0


def test_mutual_tls(mtls_server: RunningServer, pki: Pki) -> None:
    with_cert = raw_associate(
        mtls_server.port, tls_args=(client_context(pki, with_cert=True), "localhost")
    )
    try:
        assert with_cert.is_established
        assert with_cert.send_c_echo().Status == 0
    finally:
        with_cert.release()
    assert handshake_refused(mtls_server.port, client_context(pki, with_cert=False))
    assert mtls_server.stats.associations_accepted == 1


def handshake_refused(port: int, ctx: ssl.SSLContext) -> bool:
    """True when the server ends a TLS connection before any DICOM (no client cert).

    A plain socket rather than pynetdicom's SCU, which leaks its socket when the server
    refuses the handshake."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        ctx.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        try:
            tls.sendall(A_ASSOCIATE_RQ_START)
            return tls.recv(1) == b""
        except (ssl.SSLError, OSError):
            return True


@needs_dcmtk
def test_dcmtk_echoscu_over_tls(tls_server: RunningServer, pki: Pki) -> None:
    ok = echoscu(tls_server.port, "+tla", "+cf", str(pki.ca))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    plain = echoscu(tls_server.port)
    assert plain.returncode != 0


@needs_dcmtk
def test_dcmtk_echoscu_mutual_tls(mtls_server: RunningServer, pki: Pki) -> None:
    ok = echoscu(
        mtls_server.port, "+tls", str(pki.client_key), str(pki.client_cert), "+cf", str(pki.ca)
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    anonymous = echoscu(mtls_server.port, "+tla", "+cf", str(pki.ca))
    assert anonymous.returncode != 0
    assert mtls_server.stats.associations_accepted == 1


def test_bad_tls_files_are_config_errors(tmp_path: Path, pki: Pki) -> None:
    with pytest.raises(ConfigError, match="not found"):
        server_context(tmp_path / "missing.pem")
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="cannot load TLS certificate"):
        server_context(garbage)
    with pytest.raises(ConfigError, match="tls_require_client_cert"):
        Settings(tls_cert=pki.server_cert, tls_require_client_cert=True)
