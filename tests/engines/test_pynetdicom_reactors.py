"""pynetdicom's reactors on events (``engines.pynetdicom_reactors``): they wait instead of
polling, the loops copied from pynetdicom are still pynetdicom's, and the responses the
engine encodes itself reach the peer as pynetdicom would have sent them."""

from __future__ import annotations

import hashlib
import inspect
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pynetdicom import fsm
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dsutils import encode
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import P_DATA_TF

from rpi_async import scu
from rpi_async.engines import pynetdicom_reactors
from rpi_async.engines.pynetdicom_reactors import TIMER_TICK, EncodedPData, EventDUL
from rpi_async.engines.pynetdicom_transport import CommandScreen
from rpi_async.ul.commands import CEchoRQ, CFindRSP, encode_command
from rpi_async.ul.dimse import encode_message
from tests.conftest import RunningServer, ServerThread, server_settings
from tests.engines.raw_peer import RawPeer

# pynetdicom 3.0's code that pynetdicom_reactors copies or replaces. A release that
# changes any of it fails here: review pynetdicom_reactors against it, then update.
COPIED = {
    DULServiceProvider.__init__: "c82dafa9438ddf70",
    DULServiceProvider.run_reactor: "e3a10eb3a0931e48",
    DULServiceProvider.stop_dul: "28a7e0be126e7b30",
    DULServiceProvider.kill_dul: "5ceccf8dd01c2072",
    Association._run_reactor: "f28838c5559e462a",
    Association.kill: "8f9713666a7f4cff",
    fsm.DT_1: "82e5c5d4114534fa",
}


@pytest.mark.parametrize("function", list(COPIED), ids=lambda f: f.__qualname__)
def test_pynetdicom_code_copied_is_unchanged(function: Callable[..., Any]) -> None:
    digest = hashlib.sha256(inspect.getsource(function).encode()).hexdigest()[:16]
    assert digest == COPIED[function]


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Passes of each reactor: the DUL's (``_dul_pass``) and the association's (each
    pass asks the DIMSE provider for a message)."""
    counts = {"dul": 0, "association": 0}
    dul_pass = EventDUL._dul_pass
    get_msg = DIMSEServiceProvider.get_msg

    def counting_dul_pass(self: EventDUL) -> bool:
        counts["dul"] += 1
        return dul_pass(self)

    def counting_get_msg(self: DIMSEServiceProvider, block: bool = False) -> Any:
        counts["association"] += 1
        return get_msg(self, block)

    monkeypatch.setattr(EventDUL, "_dul_pass", counting_dul_pass)
    monkeypatch.setattr(DIMSEServiceProvider, "get_msg", counting_get_msg)
    return counts


@pytest.fixture
def pynetdicom_server(sample_db: Path) -> Iterator[RunningServer]:
    thread = ServerThread(server_settings(sample_db, "pynetdicom", network_timeout=30.0))
    running = thread.start()
    try:
        yield running
    finally:
        thread.stop()


@pytest.mark.network
def test_idle_association_costs_no_polling(
    counted: dict[str, int], pynetdicom_server: RunningServer
) -> None:
    """Polled every millisecond, an idle second would take about 1,000 passes of each
    reactor; waiting on events, about one per TIMER_TICK."""
    with RawPeer(pynetdicom_server.host, pynetdicom_server.port, timeout=10) as peer:
        peer.associate()
        time.sleep(0.3)  # negotiation over
        before = dict(counted)
        idle = 1.0
        time.sleep(idle)
        passes = {k: counted[k] - before[k] for k in counted}
        peer.release()
    ceiling = 3 * idle / TIMER_TICK
    assert 0 < passes["dul"] <= ceiling, passes
    assert 0 < passes["association"] <= ceiling, passes


@pytest.mark.network
def test_queries_are_answered_on_events(
    counted: dict[str, int], pynetdicom_server: RunningServer
) -> None:
    """Each step wakes the reactor that waits for it: a C-FIND round trip takes a few
    passes, not a few milliseconds' worth of polling."""
    with RawPeer(pynetdicom_server.host, pynetdicom_server.port, timeout=10) as peer:
        peer.associate()
        identifier = encode(scu.build_request("P0001", "HOSP_A"), False, True)
        assert identifier is not None
        before = dict(counted)
        for message_id in range(1, 21):
            found = peer.find_raw(identifier, message_id=message_id)
            assert [r.status for r in found] == [0xFF00, 0x0000]
        passes = {k: counted[k] - before[k] for k in counted}
        peer.release()
    assert passes["dul"] <= 20 * 12, passes
    assert passes["association"] <= 20 * 8, passes


def test_encoded_pdata_reads_as_pynetdicom_pdata() -> None:
    """Outside Sta6, or with pynetdicom's own DUL, the P-DATA-TF is built from the
    primitive's presentation data values: the same bytes on the wire."""
    identifier = b"\x10\x00\x20\x00\x06\x00P0001 "
    rsp = CFindRSP(7, "1.2.840.10008.5.1.4.31", 0xFF00)
    for max_pdu in (0, 64, 30):
        pdus = encode_message(3, rsp, identifier, max_pdu)
        offset = 0
        while offset < len(pdus):
            length = 6 + int.from_bytes(pdus[offset + 2 : offset + 6], "big")
            one = pdus[offset : offset + length]
            assert P_DATA_TF(EncodedPData(one)).encode() == one
            offset += length


def test_install_builds_one_event_dul_per_event_association() -> None:
    pynetdicom_reactors.install()
    from pynetdicom import AE
    from pynetdicom._globals import MODE_ACCEPTOR, MODE_REQUESTOR

    ae = AE()
    event_assoc = pynetdicom_reactors.EventAssociation(ae, MODE_ACCEPTOR)
    assert type(event_assoc.dul) is EventDUL
    assert type(Association(ae, MODE_REQUESTOR).dul) is DULServiceProvider


def test_command_screen_remembers_and_stays_bounded() -> None:
    screen = CommandScreen(size=4)
    readable = encode_command(CEchoRQ(1, "1.2.840.10008.1.1"), False)
    unknown = readable + b"\x00\x00\x99\x09\x02\x00\x00\x00AB"  # (0000,0999): no such element
    assert screen.why_unreadable(readable) is None
    reason = screen.why_unreadable(unknown)
    assert reason is not None
    assert "0999" in reason
    assert screen.why_unreadable(unknown) == reason  # remembered
    for message_id in range(2, 12):
        assert (
            screen.why_unreadable(encode_command(CEchoRQ(message_id, "1.2.840.10008.1.1"), False))
            is None
        )
    assert len(screen._seen) == 4
    screen.clear()
    assert not screen._seen


@pytest.mark.network
def test_duls_run_on_the_engines_pool(
    monkeypatch: pytest.MonkeyPatch, pynetdicom_server: RunningServer
) -> None:
    """No thread is started per association: each DUL runs on a thread of the engine's
    DUL pool, reused by the next association."""
    threads: list[str] = []
    reactor = EventDUL._reactor

    def recording_reactor(self: EventDUL) -> None:
        threads.append(threading.current_thread().name)
        reactor(self)

    monkeypatch.setattr(EventDUL, "_reactor", recording_reactor)
    for _ in range(10):
        with RawPeer(pynetdicom_server.host, pynetdicom_server.port, timeout=10) as peer:
            peer.associate()
            peer.release()
    assert len(threads) == 10
    assert all(name.startswith("rpi-dul") for name in threads), threads
    assert len(set(threads)) < len(threads)
