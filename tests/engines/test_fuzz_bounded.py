"""A bounded mutation fuzzer against both engines, over loopback.

Seeds are well-formed conversations (A-ASSOCIATE-RQ; then a C-FIND, a C-CANCEL, an
A-RELEASE-RQ); each case mutates one (bit flips, bytes set to edge values, lengths
rewritten, truncation, insertion, duplication) with a fixed random seed, sends it
from 127.0.0.2, half-closes and reads until the server closes. Throughout: the server stays up, a
well-behaved client is served every ``CHECK_EVERY`` cases, no log record is an ERROR
or carries a traceback, and afterwards file descriptors and threads are back to the
baseline (the pynetdicom engine's pool threads, bounded by ``pynetdicom_workers``,
stay).
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from pynetdicom.dsutils import encode

from rpi_async import scu
from rpi_async.bench import pdu
from rpi_async.dicom.uids import SopClass
from tests.conftest import RunningServer, ServerThread, server_settings
from tests.engines.test_ps38_table import context, rq

pytestmark = pytest.mark.network

CASES = 3000  # per engine
CHECK_EVERY = 250
PARALLEL = 4
CASE_TIMEOUT = 5.0
FUZZER = "127.0.0.2"  # another loopback address: the well-behaved client is 127.0.0.1
RPI = SopClass.GENERAL_RPI_QUERY.value
EDGES = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
LENGTHS = (0, 1, 2, 3, 4, 5, 6, 0xFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


def seeds() -> list[bytes]:
    association = rq(contexts=context(1) + context(3, SopClass.VERIFICATION.value))
    find = pdu.encode_find_pdata(pdu.encode_find_command(RPI), scu_identifier())
    cancel = pdu._pdu(
        pdu.PduType.P_DATA_TF,
        pdu._pdv(
            1,
            pdu.PDV_COMMAND | pdu.PDV_LAST,
            pdu._implicit(0x00000000, struct.pack("<I", 18))
            + pdu._implicit(0x00000100, struct.pack("<H", 0x0FFF))
            + pdu._implicit(0x00000120, struct.pack("<H", 1))
            + pdu._implicit(0x00000800, struct.pack("<H", 0x0101)),
        ),
    )
    return [
        association,
        association + find + pdu.RELEASE_RQ,
        association + cancel + find + pdu.RELEASE_RQ,
        association + pdu.ABORT,
    ]


def scu_identifier() -> bytes:
    data = encode(scu.build_request("P0001", "HOSP_A"), True, True)
    assert data is not None
    return bytes(data)


def mutate(data: bytes, rnd: random.Random) -> bytes:
    buf = bytearray(data)
    kind = rnd.randrange(7)
    at = rnd.randrange(len(buf))
    if kind == 0:  # bit flips
        for _ in range(rnd.randint(1, 4)):
            buf[rnd.randrange(len(buf))] ^= 1 << rnd.randrange(8)
    elif kind == 1:  # a byte set to an edge value
        buf[at] = rnd.choice(EDGES)
    elif kind == 2:  # a 4-byte (PDU length) or 2-byte (item length) field rewritten
        value = rnd.choice(LENGTHS)
        if rnd.random() < 0.5 and at + 4 <= len(buf):
            buf[at : at + 4] = struct.pack(">I", value & 0xFFFFFFFF)
        elif at + 2 <= len(buf):
            buf[at : at + 2] = struct.pack(">H", value & 0xFFFF)
    elif kind == 3:  # truncated
        del buf[at:]
    elif kind == 4:  # random bytes inserted
        buf[at:at] = rnd.randbytes(rnd.randint(1, 16))
    elif kind == 5:  # a slice duplicated
        end = min(len(buf), at + rnd.randint(1, 64))
        buf[at:at] = buf[at:end]
    else:  # a slice removed
        del buf[at : at + rnd.randint(1, 16)]
    return bytes(buf)


def run_case(srv: RunningServer, data: bytes) -> None:
    address = (srv.host, srv.port)
    with socket.create_connection(address, CASE_TIMEOUT, source_address=(FUZZER, 0)) as sock:
        with contextlib.suppress(OSError):
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass


def settle(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def well_behaved(srv: RunningServer) -> bool:
    found = scu.find(srv.host, srv.port, scu.build_request("P0001", "HOSP_A"), timeout=10)
    return [r.status for r in found] == [0xFF00, 0]


def server_sockets(process: psutil.Process, port: int) -> list[str]:
    """The server's open connections (its side: local port ``port``)."""
    return [
        f"{c.raddr} {c.status}"
        for c in process.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status != psutil.CONN_LISTEN
    ]


def other_threads() -> int:
    """Threads of this process other than the pynetdicom engine's pool."""
    return sum(1 for t in threading.enumerate() if not t.name.startswith("rpi-assoc"))


def test_bounded_fuzz(sample_db: Path, engine: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    thread = ServerThread(server_settings(sample_db, engine, acse_timeout=2, dimse_timeout=2))
    srv = thread.start()
    process = psutil.Process()
    try:
        with ThreadPoolExecutor(8) as warm_up:  # what later associations share: the
            # store's reader connections, opened as queries need them
            list(warm_up.map(lambda _: well_behaved(srv), range(16)))
        fds, threads = process.num_fds(), other_threads()
        rnd = random.Random(12)
        corpus = seeds()
        with ThreadPoolExecutor(PARALLEL) as pool:
            for start in range(0, CASES, CHECK_EVERY):
                batch = [mutate(rnd.choice(corpus), rnd) for _ in range(CHECK_EVERY)]
                list(pool.map(lambda d: run_case(srv, d), batch))
                assert well_behaved(srv), f"not served after case {start}"
        assert settle(lambda: not server_sockets(process, srv.port)), server_sockets(
            process, srv.port
        )
        assert settle(lambda: process.num_fds() <= fds), (process.num_fds(), fds)
        assert settle(lambda: other_threads() <= threads), (other_threads(), threads)
    finally:
        thread.stop()
    bad = [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.levelno >= logging.ERROR or r.exc_info
    ]
    assert not bad, bad[:10]
