"""Both engines, the same queries: byte-identical responses on the wire, the same audit.

Every status, C-CANCEL (and a stray one), a C-FIND on the wrong context, and the audit
records: the engines share one query path, so nothing may differ but the clock.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from rpi_async import scu
from rpi_async.bench import pdu
from rpi_async.dicom.uids import SopClass, TransferSyntax
from rpi_async.store.reader import PatientStore
from tests.conftest import RunningServer, ServerThread, server_settings
from tests.engines.raw_peer import RawPeer

pytestmark = pytest.mark.network

# Observation DateTime is the time of each query: mask its value before comparing.
OBSERVATION_DT = re.compile(rb"(\x40\x00\x32\xa0(?:DT\x1a\x00|[\x00-\xff]{4}))[0-9.+\-]{14,26}")

QUERIES = [
    ("P0001", "HOSP_A", "9007", SopClass.GENERAL_RPI_QUERY),
    ("P0001", "HOSP_A", "9000", SopClass.GENERAL_RPI_QUERY),
    ("P0001", None, "3802", SopClass.GENERAL_RPI_QUERY),
    ("P0001", "HOSP_A", "9000", SopClass.BREAST_RPI_QUERY),
    ("P0001", "HOSP_A", "3802", SopClass.CARDIAC_RPI_QUERY),
    ("P0002", None, "9007", SopClass.GENERAL_RPI_QUERY),  # non-ASCII name: ISO_IR 192
    ("DUP", "ISSUER_B", "9007", SopClass.GENERAL_RPI_QUERY),
]


@pytest.fixture
def both(sample_db: Path) -> Iterator[dict[str, RunningServer]]:
    threads = {
        name: ServerThread(server_settings(sample_db, name)) for name in ("pynetdicom", "native")
    }
    running = {name: thread.start() for name, thread in threads.items()}
    try:
        yield running
    finally:
        for thread in threads.values():
            thread.stop()


def answer(srv: RunningServer, request: Dataset, sop_class: str) -> tuple[list[int], list[bytes]]:
    datasets: list[bytes] = []
    with RawPeer(srv.host, srv.port) as peer:
        accepted = peer.associate(sop_class)
        assert accepted.context_result == 0
        implicit = accepted.transfer_syntax == TransferSyntax.IMPLICIT_VR_LE
        identifier = encode(request, implicit, True)
        assert identifier is not None
        statuses = [r.status or 0 for r in peer.find_raw(identifier, sop_class, datasets)]
        peer.release()
    return statuses, [OBSERVATION_DT.sub(rb"\1<masked>", d) for d in datasets]


def test_same_queries_same_bytes(both: dict[str, RunningServer]) -> None:
    for patient_id, issuer, template, sop_class in QUERIES:
        request = scu.build_request(patient_id, issuer, template)
        # The requestor proposes both syntaxes; each engine picks the same one.
        a = answer(both["pynetdicom"], request, sop_class)
        b = answer(both["native"], request, sop_class)
        assert a[0] == b[0] == [0xFF00, 0]
        assert len(a[1]) == len(b[1]) == 1
        assert b"<masked>" in a[1][0]
        assert a[1][0] == b[1][0], (patient_id, template)


def _without(keyword: str) -> Dataset:
    ds = scu.build_request("P0001", "HOSP_A")
    delattr(ds, keyword)
    return ds


# Every status the service answers before or after a lookup: (request, SOP class).
STATUS_CASES: dict[str, tuple[Dataset | bytes, str]] = {
    "FF00 match": (scu.build_request("P0001", "HOSP_A"), SopClass.GENERAL_RPI_QUERY),
    "0000 no match": (scu.build_request("NOBODY"), SopClass.GENERAL_RPI_QUERY),
    "C100 two issuers": (scu.build_request("DUP"), SopClass.GENERAL_RPI_QUERY),
    "C200 template": (scu.build_request("P0001", None, "1234"), SopClass.GENERAL_RPI_QUERY),
    "C200 class": (scu.build_request("P0001", None, "9007"), SopClass.CARDIAC_RPI_QUERY),
    "A900 patient id": (_without("PatientID"), SopClass.GENERAL_RPI_QUERY),
    "A900 template": (_without("ContentTemplateSequence"), SopClass.GENERAL_RPI_QUERY),
    "C000 undecodable": (b"\x10\x00\x20\x00\xff\xff\x00\x10garbage!", SopClass.GENERAL_RPI_QUERY),
}


def exchange(
    srv: RunningServer, request: Dataset | bytes, sop_class: str
) -> tuple[list[int], list[bytes], list[bytes]]:
    """(statuses, response command sets, masked response identifiers) of one C-FIND."""
    datasets: list[bytes] = []
    commands: list[bytes] = []
    with RawPeer(srv.host, srv.port) as peer:
        accepted = peer.associate(sop_class)
        implicit = accepted.transfer_syntax == TransferSyntax.IMPLICIT_VR_LE
        identifier = request if isinstance(request, bytes) else encode(request, implicit, True)
        assert identifier is not None
        found = peer.find_raw(identifier, sop_class, datasets, commands)
        peer.release()
    return (
        [r.status or 0 for r in found],
        commands,
        [OBSERVATION_DT.sub(rb"\1<masked>", d) for d in datasets],
    )


@pytest.mark.parametrize("case", sorted(STATUS_CASES))
def test_every_status_same_bytes(both: dict[str, RunningServer], case: str) -> None:
    request, sop_class = STATUS_CASES[case]
    a = exchange(both["pynetdicom"], request, sop_class)
    b = exchange(both["native"], request, sop_class)
    assert a == b
    assert f"{a[0][0]:04X}" == case[:4]


def test_find_on_another_context_is_refused_alike(both: dict[str, RunningServer]) -> None:
    """A C-FIND naming an RPI SOP class on the Verification context: 0122, no data."""
    answers = []
    for name in ("pynetdicom", "native"):
        srv = both[name]
        commands: list[bytes] = []
        datasets: list[bytes] = []
        with RawPeer(srv.host, srv.port) as peer:
            accepted = peer.associate(SopClass.VERIFICATION)
            implicit = accepted.transfer_syntax == TransferSyntax.IMPLICIT_VR_LE
            identifier = encode(scu.build_request("P0001"), implicit, True)
            assert identifier is not None
            found = peer.find_raw(identifier, SopClass.GENERAL_RPI_QUERY, datasets, commands)
            peer.release()
        answers.append(([r.status for r in found], commands, datasets))
    assert answers[0] == answers[1]
    assert answers[0][0] == [0x0122]
    assert answers[0][2] == []


class Gate:
    """Every store lookup, on any server's loop, waits until the gate is open."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.entered = threading.Event()
        self.open = threading.Event()
        lookup = PatientStore.lookup_compact

        async def gated(store: PatientStore, *args: Any) -> Any:
            self.entered.set()
            await asyncio.to_thread(self.open.wait, 20)
            return await lookup(store, *args)

        monkeypatch.setattr(PatientStore, "lookup_compact", gated)


@pytest.fixture
def stalled_pair(
    sample_db: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[tuple[dict[str, RunningServer], Gate, Path]]:
    gate = Gate(monkeypatch)
    threads = {
        name: ServerThread(
            server_settings(
                sample_db,
                name,
                query_timeout=30,
                audit_file=tmp_path / f"{name}.jsonl",
                audit_secret_file=tmp_path / "audit.key",
            )
        )
        for name in ("pynetdicom", "native")
    }
    running = {name: thread.start() for name, thread in threads.items()}
    try:
        yield running, gate, tmp_path
    finally:
        gate.open.set()
        for thread in threads.values():
            thread.stop()


def test_cancel_same_bytes_and_stray_cancel_ignored(
    stalled_pair: tuple[dict[str, RunningServer], Gate, Path],
) -> None:
    both, gate, _ = stalled_pair
    answers = []
    for name in ("pynetdicom", "native"):
        srv = both[name]
        commands: list[bytes] = []
        with RawPeer(srv.host, srv.port) as peer:
            accepted = peer.associate()
            implicit = accepted.transfer_syntax == TransferSyntax.IMPLICIT_VR_LE
            request = encode(scu.build_request("P0001", "HOSP_A"), implicit, True)
            assert request is not None
            # A C-CANCEL for a Message ID nothing answers is ignored (PS3.7 9.3.2.3) ...
            peer.cancel(7)
            assert srv.stats.wait_for_cancels(1, 10)
            gate.entered.clear()
            gate.open.clear()
            peer.send(pdu.encode_find_pdata(pdu.encode_find_command(GENERAL, 7), request))
            assert gate.entered.wait(10), name
            # ... and a C-CANCEL for the one in progress answers it FE00.
            peer.cancel(7)
            assert srv.stats.wait_for_cancels(2, 10)
            gate.open.set()
            found = peer.find_raw(b"", GENERAL, None, commands, send=False)
            # The same Message ID again: a lookup, not a stale cancel.
            again = peer.find_raw(request, GENERAL, message_id=7)
            peer.release()
        answers.append(([r.status for r in found], commands, [r.status for r in again]))
    assert answers[0] == answers[1]
    assert answers[0][0] == [0xFE00]
    assert answers[0][2] == [0xFF00, 0]


def test_audit_records_alike(stalled_pair: tuple[dict[str, RunningServer], Gate, Path]) -> None:
    both, gate, tmp_path = stalled_pair
    gate.open.set()
    cases = [*STATUS_CASES.values(), (scu.build_request("DUP", "ISSUER_B"), GENERAL)]
    for name in ("pynetdicom", "native"):
        for request, sop_class in cases:
            exchange(both[name], request, sop_class)
    records = {}
    for name in ("pynetdicom", "native"):
        path = tmp_path / f"{name}.jsonl"
        deadline = time.monotonic() + 10
        queries: list[dict[str, object]] = []
        while len(queries) < len(cases) and time.monotonic() < deadline:
            time.sleep(0.05)  # the audit writer thread appends in batches
            lines = [json.loads(line) for line in path.read_text().splitlines()]
            queries = [r for r in lines if r["event"] == "query"]  # not application-start
        records[name] = [{k: v for k, v in r.items() if k not in VARYING} for r in queries]
    assert records["pynetdicom"] == records["native"]
    assert len(records["native"]) == len(cases)
    by_case = dict(zip(STATUS_CASES, records["native"], strict=False))
    assert by_case["A900 patient id"]["patient_id"] is None  # absent from that request
    assert by_case["A900 template"]["patient_id"]  # present, though the request failed
    assert by_case["C200 class"]["template"] == "9007"
    assert records["native"][-1]["issuer"] == "ISSUER_B"  # the issuer is audited
    assert records["native"][0]["issuer"] == "HOSP_A"


# What legitimately differs between two runs of the same query.
VARYING = {"time", "duration", "peer_port", "duration_ms", "timestamp", "called_ae_port"}
GENERAL = SopClass.GENERAL_RPI_QUERY.value
