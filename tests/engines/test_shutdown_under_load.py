"""SIGTERM under load, both engines: every client sees an answer, a refusal or an
A-ABORT; none is reset mid-request (PS3.8: an association ends by release, rejection
or abort)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from rpi_async import scu
from rpi_async.bench import pdu
from rpi_async.dicom.uids import SopClass
from tests.conftest import ServerThread, server_settings
from tests.engines.raw_peer import RawPeer
from tests.engines.test_hostile_peers import RPI

pytestmark = pytest.mark.network

CLIENTS = 16


def one_association(host: str, port: int, identifier: bytes) -> str:
    """What one association saw: answered, refused, aborted, or reset (a failure)."""
    try:
        peer = RawPeer(host, port, timeout=15)
    except OSError:
        return "refused"  # connect refused: the server is gone; a client retries
    step = "request"
    with peer:
        try:
            peer.send(pdu.encode_associate_rq("RPI_SCP", "LOAD", SopClass.GENERAL_RPI_QUERY))
            reply = peer.receive()
            if reply.pdu_type == pdu.PduType.ASSOCIATE_RJ:
                return "refused"
            if reply.pdu_type == pdu.PduType.ABORT:
                return "aborted"
            step = "C-FIND"
            peer.send(pdu.encode_find_pdata(pdu.encode_find_command(RPI), identifier))
            while True:
                reply = peer.receive()
                if reply.pdu_type == pdu.PduType.ABORT:
                    return "aborted"
                assert reply.pdu_type == pdu.PduType.P_DATA_TF, reply
                statuses = [
                    pdu.parse_command(p.fragment).status
                    for p in pdu.parse_pdata(reply.body)
                    if p.is_command and p.is_last
                ]
                if statuses and statuses[-1] not in (0xFF00, 0xFF01):
                    break
            step = "release"
            peer.send(pdu.RELEASE_RQ)
            reply = peer.receive()
            return "aborted" if reply.pdu_type == pdu.PduType.ABORT else "answered"
        except (ConnectionError, OSError) as exc:
            return f"reset after the {step}: {type(exc).__name__}"


def test_sigterm_under_load_loses_no_request(sample_db: Path, engine: str) -> None:
    from pynetdicom.dsutils import encode

    identifier = encode(scu.build_request("P0001", "HOSP_A"), False, True)
    assert identifier is not None
    thread = ServerThread(server_settings(sample_db, engine, shutdown_grace=5))
    srv = thread.start()
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()
    stopped = threading.Event()

    def client() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            seen = one_association(srv.host, srv.port, bytes(identifier))
            with lock:
                outcomes[seen] += 1
            if stopped.is_set() and seen == "refused":
                return

    clients = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for c in clients:
        c.start()
    time.sleep(1.5)
    thread.stop()  # what SIGTERM does: Server.stop
    stopped.set()
    for c in clients:
        c.join(40)
    assert outcomes["answered"] > 0
    assert not [k for k in outcomes if k.startswith("reset")], outcomes
