"""Timers and malformed input over real sockets: the peer is dropped, others are served."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpi_async import scu
from rpi_async.bench import pdu
from tests.conftest import RunningServer, ServerThread, server_settings
from tests.engines.raw_peer import RawPeer

pytestmark = pytest.mark.network

A_ABORT = 0x07


@pytest.fixture
def quick_server(sample_db: Path, engine: str) -> Iterator[RunningServer]:
    settings = server_settings(sample_db, engine, acse_timeout=0.5, network_timeout=1.0)
    thread = ServerThread(settings)
    running = thread.start()
    try:
        yield running
    finally:
        thread.stop()


def still_serving(srv: RunningServer) -> None:
    responses = scu.find(srv.host, srv.port, scu.build_request("P0001", "HOSP_A"), timeout=10)
    assert [r.status for r in responses] == [0xFF00, 0]


def test_silent_client_is_dropped(quick_server: RunningServer) -> None:
    with RawPeer(quick_server.host, quick_server.port, timeout=10) as peer:
        assert peer.closed_by_peer()
    still_serving(quick_server)


def test_idle_association_is_ended(quick_server: RunningServer) -> None:
    with RawPeer(quick_server.host, quick_server.port, timeout=10) as peer:
        peer.associate()
        # Nothing more is sent: the server ends the association (A-ABORT, then close).
        assert peer.closed_by_peer()
    still_serving(quick_server)


GARBAGE = {
    "unknown PDU type": b"\x0a\x00\x00\x00\x00\x04abcd",
    "P-DATA before association": pdu.encode_find_pdata(b"\x00" * 8, b"\x00" * 8),
    "length that lies": b"\x01\x00" + struct.pack(">I", 0x7FFFFFFF) + b"\x00\x01",
    "truncated A-ASSOCIATE-RQ": pdu.encode_associate_rq("RPI_SCP", "X", "1.2.3")[:40] + b"\x00" * 4,
}


@pytest.mark.parametrize("name", sorted(GARBAGE))
def test_malformed_input_gets_abort_and_others_are_served(
    quick_server: RunningServer, name: str
) -> None:
    with RawPeer(quick_server.host, quick_server.port, timeout=10) as peer:
        peer.send(GARBAGE[name])
        try:
            reply = peer.receive()
        except (ConnectionError, OSError):
            reply = None  # closed without a PDU: also a refusal
        if reply is not None:
            assert reply.pdu_type in (A_ABORT, 0x03), reply  # A-ABORT or A-ASSOCIATE-RJ
        assert peer.closed_by_peer()
    still_serving(quick_server)


def test_second_associate_request_is_aborted(quick_server: RunningServer) -> None:
    with RawPeer(quick_server.host, quick_server.port, timeout=10) as peer:
        peer.associate()
        peer.send(pdu.encode_associate_rq("RPI_SCP", "RAW_PEER", "1.2.840.10008.5.1.4.37.1"))
        reply = peer.receive()
        assert reply.pdu_type == A_ABORT
        assert peer.closed_by_peer()
    still_serving(quick_server)
