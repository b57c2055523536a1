"""Live updates: FHIR imports into the database a running server answers from.

Each round re-imports, for every patient, a Condition and an HDL Observation with the
same ids and a new round number in both (onset year and value). Queries run all the
while: none may fail, and every answer must show one round in both places (a patient's
update is one transaction: never half of it). Afterwards the last round is what the
server answers, without a reload.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydicom.dataset import Dataset

from rpi_async import scu
from rpi_async.store import schema
from rpi_async.store.fhir.load import import_fhir
from tests.conftest import ServerThread, server_settings

pytestmark = [pytest.mark.network, pytest.mark.slow]

PATIENTS = 12
ROUNDS = 20
QUERY_THREADS = 2
MAX_QUERIES = 400  # per thread: bounds the test whatever the machine's speed
DEADLINE = 120.0  # seconds for the whole update phase


def _patient(i: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": f"live{i}",
        "identifier": [{"system": "http://h.example/mrn", "value": f"LIVE{i:04d}"}],
        "gender": "female",
        "birthDate": "1960-01-01",
    }


def _round(i: int, k: int) -> list[dict[str, Any]]:
    subject = {"reference": f"Patient/live{i}"}
    return [
        {
            "resourceType": "Condition",
            "id": f"live{i}-htn",
            "subject": subject,
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
            "onsetDateTime": str(2000 + k),
        },
        {
            "resourceType": "Observation",
            "id": f"live{i}-hdl",
            "status": "final",
            "subject": subject,
            "code": {"coding": [{"system": "http://loinc.org", "code": "2085-9"}]},
            "effectiveDateTime": "2024-01-01",
            "valueQuantity": {
                "value": 40 + k,
                "system": "http://unitsofmeasure.org",
                "code": "mg/dL",
            },
        },
    ]


def _ndjson(path: Path, resources: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in resources))
    return path


def _items(ds: Dataset) -> Iterator[Dataset]:
    for item in ds.get("ContentSequence", []):
        yield item
        yield from _items(item)


def _round_seen(identifier: Dataset) -> tuple[int, int]:
    """(round by the concern's onset, round by the HDL value) of a TID 3802 answer."""
    onset = hdl = -1
    for item in _items(identifier):
        name = item.ConceptNameCodeSequence[0].CodeValue
        if name == "121431":  # DateTime Concern Noted
            onset = int(str(item.DateTime)) - 2000
        elif name == "2086-7":
            hdl = int(float(item.MeasuredValueSequence[0].NumericValue)) - 40
    return onset, hdl


def _answered(answered: list[int], failures: list[str], target: int) -> bool:
    return sum(answered) >= target or bool(failures)


def test_queries_during_live_updates(tmp_path: Path, engine: str) -> None:
    db = tmp_path / "live.sqlite3"
    conn = schema.connect_writer(db, create=True)
    mrn = {"http://h.example/mrn": "HOSP"}
    start = [_patient(i) for i in range(PATIENTS)]
    start += [r for i in range(PATIENTS) for r in _round(i, 0)]
    import_fhir(conn, [_ndjson(tmp_path / "start.ndjson", start)], issuer_map=mrn)

    thread = ServerThread(server_settings(db, engine))
    server = thread.start()
    stop = threading.Event()
    failures: list[str] = []
    answered = [0] * QUERY_THREADS
    progress = threading.Condition()

    def query(worker: int) -> None:
        n = 0
        while not stop.is_set() and n < MAX_QUERIES:
            pid = f"LIVE{n % PATIENTS:04d}"
            n += 1
            try:
                responses = scu.find(
                    server.host, server.port, scu.build_request(pid, "HOSP", "3802"), timeout=10
                )
            except Exception as exc:  # any failure counts; the test reports them all
                failures.append(f"{pid}: {exc!r}")
                continue
            statuses = [r.status for r in responses]
            if statuses != [0xFF00, 0x0000]:
                failures.append(f"{pid}: statuses {statuses}")
                continue
            identifier = responses[0].identifier
            assert identifier is not None
            onset, hdl = _round_seen(identifier)
            if onset != hdl or onset < 0:
                failures.append(f"{pid}: a mix of rounds {onset} and {hdl}")
            with progress:
                answered[worker] += 1
                progress.notify_all()

    workers = [threading.Thread(target=query, args=(w,)) for w in range(QUERY_THREADS)]
    try:
        for worker in workers:
            worker.start()
        began = time.monotonic()
        for k in range(1, ROUNDS + 1):
            update = [r for i in range(PATIENTS) for r in _round(i, k)]
            summary = import_fhir(conn, [_ndjson(tmp_path / f"round{k}.ndjson", update)])
            assert summary.patients == PATIENTS
            # Let every query thread answer between two rounds, so that queries and
            # updates interleave whatever the machine's speed.
            target = sum(answered) + QUERY_THREADS
            with progress:
                progress.wait_for(functools.partial(_answered, answered, failures, target), 30)
            assert time.monotonic() - began < DEADLINE
        during = sum(answered)
        stop.set()
        for worker in workers:
            worker.join(60)
        assert failures == []
        assert during >= ROUNDS * QUERY_THREADS
        for i in range(PATIENTS):
            request = scu.build_request(f"LIVE{i:04d}", "HOSP", "3802")
            responses = scu.find(server.host, server.port, request, timeout=10)
            identifier = responses[0].identifier
            assert identifier is not None
            assert _round_seen(identifier) == (ROUNDS, ROUNDS)
    finally:
        stop.set()
        thread.stop()
        conn.close()
