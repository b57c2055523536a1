"""Slow and hostile peers on both engines: they cost bounded time and memory, and a
well-behaved client is served meanwhile, on the default limits.

The hostile peers connect from 127.0.0.2 (loopback too, another address: the per-peer
limit is what protects the others), the well-behaved client from 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
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
from rpi_async.service.request import RequestReader
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


def explicit(tag: int, vr: bytes, value: bytes) -> bytes:
    header = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + vr
    if vr == b"SQ":
        return header + b"\0\0" + struct.pack("<I", len(value)) + value
    return header + struct.pack("<H", len(value)) + value


def nested(depth: int) -> bytes:
    """Patient ID, then a sequence nested ``depth`` deep (undefined lengths)."""
    inner = b""
    for _ in range(depth):
        item = struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + inner
        item += struct.pack("<HHI", 0xFFFE, 0xE00D, 0)
        inner = struct.pack("<HH", 0x0040, 0xA730) + b"SQ\0\0" + struct.pack("<I", 0xFFFFFFFF)
        inner += item + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0)
    return explicit(0x00100020, b"LO", b"P0001 ") + inner


def explicit_peer(srv: RunningServer) -> RawPeer:
    peer = RawPeer(srv.host, srv.port, timeout=30)
    explicit_le = TransferSyntax.EXPLICIT_VR_LE.value
    peer.send(rq(contexts=context(1, syntaxes=(explicit_le,))))
    assert answer(peer) == ("AC",)
    return peer


def test_deeply_nested_identifier_gets_c000_and_no_error(
    server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with explicit_peer(server) as peer:
        send_fragmented(peer, nested(3000))
        assert [r.status for r in peer.find_raw(b"", send=False)] == [0xC000]
        peer.release()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_large_identifier_is_read_off_the_event_loop(
    server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100,000 elements take a noticeable time to read: not on the loop's thread."""
    readers: list[tuple[int, str]] = []
    read = RequestReader.read

    def recording(self: RequestReader, data: bytes | None, *args: str) -> object:
        readers.append((len(data or b""), threading.current_thread().name))
        return read(self, data, *args)

    monkeypatch.setattr(RequestReader, "read", recording)
    private = b"".join(explicit(0x00111000 + i % 0xE000, b"LO", b"ab") for i in range(100_000))
    with explicit_peer(server) as peer:
        send_fragmented(peer, explicit(0x00100020, b"LO", b"P0001 ") + private)
        assert [r.status for r in peer.find_raw(b"", send=False)] == [0xA900]
        peer.release()
    assert readers
    assert all(name != "test-server" for size, name in readers if size > 1_000_000)


def test_undecodable_identifier_leaves_no_pydicom_warning(
    hostile_server: RunningServer, caplog: pytest.LogCaptureFixture
) -> None:
    """C000 answers it; pydicom's own warning would be a line a peer can repeat at will."""
    caplog.set_level(logging.DEBUG)
    with RawPeer(hostile_server.host, hostile_server.port, timeout=10) as peer:
        peer.associate()
        for _ in range(3):
            assert [r.status for r in peer.find_raw(b"\xff\xfe\x00\x01garbage!")] == [0xC000]
        peer.release()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("pydicom")] == []
