"""Both engines, the same queries: byte-identical response identifiers on the wire."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode

from rpi_async import scu
from rpi_async.dicom.uids import SopClass, TransferSyntax
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
