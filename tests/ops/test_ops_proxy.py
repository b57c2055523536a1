"""PROXY protocol on the native engine: the access policy, the per-peer limit and the
access log see the address the balancer names; a connection without a header, or from
an untrusted address, is dropped."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest

from rpi_async.bench.pdu import encode_associate_rq
from rpi_async.config import Settings
from rpi_async.dicom.uids import SopClass
from rpi_async.errors import ConfigError
from tests.conftest import server_settings
from tests.ops.ops_support import OpsServerThread

pytestmark = pytest.mark.network

A_ASSOCIATE_AC, A_ASSOCIATE_RJ = 0x02, 0x03
RQ = encode_associate_rq("RPI_SCP", "TEST_SCU", SopClass.VERIFICATION)


def first_reply(port: int, data: bytes) -> bytes:
    """The first bytes the server answers ``data`` with (b"": it closed the connection)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        try:
            return sock.recv(1)
        except ConnectionResetError:
            return b""


def proxy_v1(address: str, port: int = 40000) -> bytes:
    return f"PROXY TCP4 {address} 127.0.0.1 {port} 11112\r\n".encode()


def test_policy_sees_the_proxied_address(sample_db: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = server_settings(
        sample_db,
        "native",
        proxy_protocol=True,
        allowed_calling_aes=("TEST_SCU@10.1.2.0/24",),
        max_associations_per_peer=1,
    )
    thread = OpsServerThread(settings)
    srv = thread.start()
    try:
        with caplog.at_level(logging.INFO, logger="rpi_async.access"):
            assert first_reply(srv.port, proxy_v1("10.1.2.3", 40001) + RQ) == bytes(
                [A_ASSOCIATE_AC]
            )
            assert first_reply(srv.port, proxy_v1("192.0.2.1") + RQ) == bytes([A_ASSOCIATE_RJ])
            assert first_reply(srv.port, RQ) == b""  # no header: dropped
            # The per-peer limit counts the proxied address: two associations at once
            # from 10.1.2.3, through one balancer connection each.
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as held:
                held.sendall(proxy_v1("10.1.2.3", 40002) + RQ)
                assert held.recv(1) == bytes([A_ASSOCIATE_AC])
                assert first_reply(srv.port, proxy_v1("10.1.2.3", 40003) + RQ) == bytes(
                    [A_ASSOCIATE_RJ]
                )
                assert first_reply(srv.port, proxy_v1("10.1.2.4", 40004) + RQ) == bytes(
                    [A_ASSOCIATE_AC]
                )
    finally:
        thread.stop()
    lines = [r.getMessage() for r in caplog.records if r.name == "rpi_async.access"]
    assert any(line.startswith("association 10.1.2.3:40001 TEST_SCU") for line in lines)
    assert any(line.startswith("association 192.0.2.1:40000 ") for line in lines)
    assert any("10.1.2.3:40003" in line and "peer-limit-exceeded" in line for line in lines)
    assert any("PROXY protocol" in line for line in lines)


def test_untrusted_balancer_is_dropped(sample_db: Path) -> None:
    settings = server_settings(
        sample_db, "native", proxy_protocol=True, trusted_proxies=("192.0.2.0/24",)
    )
    thread = OpsServerThread(settings)
    srv = thread.start()
    try:
        assert first_reply(srv.port, proxy_v1("10.1.2.3") + RQ) == b""
        assert srv.stats.snapshot().associations_accepted == 0
    finally:
        thread.stop()


def test_settings() -> None:
    with pytest.raises(ConfigError, match=r"proxy_protocol.*native"):
        Settings(proxy_protocol=True, engine="pynetdicom")
    with pytest.raises(ConfigError, match="trusted_proxies"):
        Settings(trusted_proxies=("balancer",))
