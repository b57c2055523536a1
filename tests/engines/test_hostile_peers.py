"""Slow and hostile peers on both engines: they cost bounded time and memory, and a
well-behaved client is served meanwhile, on the default limits.

The hostile peers connect from 127.0.0.2 (loopback too, another address: the per-peer
limit is what protects the others), the well-behaved client from 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from rpi_async import scu
from rpi_async.bench import pdu
from rpi_async.config import Settings
from rpi_async.dicom.uids import SopClass, TransferSyntax
from tests.conftest import RunningServer, ServerThread
from tests.engines.raw_peer import RawPeer
from tests.engines.test_ps38_table import answer, context, rq

pytestmark = pytest.mark.network

HOSTILE = "127.0.0.2"
MIB = 1024 * 1024
RPI = SopClass.GENERAL_RPI_QUERY.value


def default_server(db: Path, engine: str, **changes: object) -> ServerThread:
    """Every limit at its default; only the address and engine chosen."""
    settings = Settings(db=db).replace(host="127.0.0.1", port=0, engine=engine, **changes)
    return ServerThread(settings)


@pytest.fixture
def hostile_server(sample_db: Path, engine: str) -> Iterator[RunningServer]:
    thread = default_server(sample_db, engine)
    running = thread.start()
    try:
        yield running
    finally:
        thread.stop()


def connect(srv: RunningServer, source: str = HOSTILE) -> socket.socket:
    sock = socket.create_connection((srv.host, srv.port), timeout=10, source_address=(source, 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def served_within(srv: RunningServer) -> float:
    started = time.monotonic()
    responses = scu.find(srv.host, srv.port, scu.build_request("P0001", "HOSP_A"), timeout=10)
    assert [r.status for r in responses] == [0xFF00, 0]
    return time.monotonic() - started


def test_half_sent_requests_and_trickling_associations_lock_no_one_out(
    hostile_server: RunningServer,
) -> None:
    srv = hostile_server
    sockets: list[socket.socket] = []
    try:
        for _ in range(70):  # the first 30 bytes of an A-ASSOCIATE-RQ, then nothing
            sock = connect(srv)
            sock.sendall(rq()[:30])
            sockets.append(sock)
        trickling: list[socket.socket] = []
        for _ in range(70):  # associated (or refused: per-peer limit), then a byte at a time
            sock = connect(srv)
            sockets.append(sock)
            sock.sendall(rq())
            peer = RawPeer.__new__(RawPeer)
            peer.sock = sock
            if answer(peer) == ("AC",):
                sock.sendall(b"\x04")  # the first byte of a P-DATA-TF
                trickling.append(sock)
        assert trickling, "no hostile association was accepted"
        for round_ in range(3):
            for sock in trickling:
                with contextlib.suppress(OSError):
                    sock.send(b"\x00")
            assert served_within(srv) < 1.0, f"round {round_}"
    finally:
        for sock in sockets:
            sock.close()


def test_trickled_request_is_dropped_at_artim(sample_db: Path, engine: str) -> None:
    """A byte every 0.2 s does not keep a connection waiting for its request past ARTIM."""
    thread = default_server(sample_db, engine, acse_timeout=1.0)
    srv = thread.start()
    try:
        sock = connect(srv)
        started = time.monotonic()
        closed = False
        for byte in rq()[:40]:
            try:
                sock.sendall(bytes([byte]))
                time.sleep(0.2)
                sock.setblocking(False)
                with contextlib.suppress(BlockingIOError):
                    if sock.recv(1) == b"":
                        closed = True
                        break
                sock.setblocking(True)
            except OSError:
                closed = True
                break
        assert closed
        assert time.monotonic() - started < 5.0
        sock.close()
        served_within(srv)
    finally:
        thread.stop()


def test_trickled_pdu_is_aborted_after_dimse_timeout(sample_db: Path, engine: str) -> None:
    """In an association: a PDU must be complete within dimse_timeout of its first byte."""
    thread = default_server(sample_db, engine, dimse_timeout=1.0)
    srv = thread.start()
    try:
        with RawPeer(srv.host, srv.port, timeout=10) as peer:
            peer.associate()
            command = pdu.encode_find_pdata(pdu.encode_find_command(RPI), bytes(8))
            started = time.monotonic()
            reply = None
            for byte in command:
                peer.sock.sendall(bytes([byte]))
                peer.sock.settimeout(0.25)
                try:
                    reply = peer.receive()
                    break
                except TimeoutError:
                    continue
                finally:
                    peer.sock.settimeout(10)
            assert reply is not None
            assert reply.pdu_type == pdu.PduType.ABORT, reply
            assert time.monotonic() - started < 5.0
        served_within(srv)
    finally:
        thread.stop()


def send_fragmented(peer: RawPeer, identifier: bytes, fragment: int = 16000) -> None:
    """A C-FIND-RQ whose identifier goes in P-DATA-TF PDUs of ``fragment`` bytes."""
    command = pdu.encode_find_command(RPI)
    peer.send(pdu._pdu(pdu.PduType.P_DATA_TF, pdu._pdv(1, pdu.PDV_COMMAND | pdu.PDV_LAST, command)))
    for offset in range(0, len(identifier), fragment):
        part = identifier[offset : offset + fragment]
        last = pdu.PDV_LAST if offset + fragment >= len(identifier) else 0
        peer.send(pdu._pdu(pdu.PduType.P_DATA_TF, pdu._pdv(1, last, part)))


def rss() -> int:
    return int(psutil.Process().memory_info().rss)


def test_huge_pdu_length_costs_no_memory(hostile_server: RunningServer) -> None:
    srv = hostile_server
    served_within(srv)  # the first association loads what every later one shares
    baseline = rss()
    for associated in (False, True):
        with RawPeer(srv.host, srv.port, timeout=10) as peer:
            if associated:
                peer.associate()
            peer.send(b"\x04\x00" + struct.pack(">I", 0x80000000))
            chunk = bytes(MIB)
            with contextlib.suppress(OSError):
                for _ in range(64):  # the server refuses from the header: sends fail soon
                    peer.sock.sendall(chunk)
            assert rss() - baseline < 50 * MIB
    served_within(srv)
    assert rss() - baseline < 50 * MIB


def test_deflate_bomb_gets_c000_and_costs_no_memory(hostile_server: RunningServer) -> None:
    srv = hostile_server
    deflated = TransferSyntax.DEFLATED_EXPLICIT_VR_LE.value
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = compressor.compress(bytes(1024 * MIB)) + compressor.flush()  # ~1 MB on the wire
    bomb += b"\x00" * (len(bomb) % 2)
    served_within(srv)  # the first association loads what every later one shares
    baseline = rss()
    with RawPeer(srv.host, srv.port, timeout=30) as peer:
        peer.send(rq(contexts=context(1, syntaxes=(deflated,))))
        assert answer(peer) == ("AC",)
        send_fragmented(peer, bomb)
        found = peer.find_raw(b"", send=False)
        assert [r.status for r in found] == [0xC000]
    assert rss() - baseline < 50 * MIB
    served_within(srv)
