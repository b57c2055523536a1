"""The load generator against rpi-async itself, both engines: its counts match the server's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rpi_async.bench import generator
from rpi_async.bench.identifier import QueryModel
from rpi_async.bench.mix import DUP_ID, Mix, QueryKind, QueryPlan, read_patients_file
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import SopClass
from rpi_async.store.model import PatientRecord
from tests.conftest import SAMPLE_RECORDS, RunningServer, ServerThread, make_db, server_settings

pytestmark = pytest.mark.network

DUPS = (
    PatientRecord(patient_id=DUP_ID, issuer="ISSUER_A", name="Dup^A"),
    PatientRecord(patient_id=DUP_ID, issuer="ISSUER_B", name="Dup^B"),
)


@pytest.fixture
def rpi_server(tmp_path: Path, engine: str) -> Iterator[RunningServer]:
    db = make_db(tmp_path / "bench.sqlite3", SAMPLE_RECORDS + DUPS)
    thread = ServerThread(server_settings(db, engine))
    running = thread.start()
    try:
        yield running
    finally:
        thread.stop()


async def test_generator_counts_match_rpi_async(tmp_path: Path, rpi_server: RunningServer) -> None:
    patients = tmp_path / "patients.txt"
    patients.write_text("P0001\tHOSP_A\nP0002\n", encoding="utf-8")
    plan = QueryPlan(
        read_patients_file(patients),
        Mix.parse("hit=0.6,miss=0.2,dup=0.2"),
        sop_class=SopClass.GENERAL_RPI_QUERY,
        model=QueryModel.RPI,
        template_id="9007",
        seed=3,
    )
    config = generator.BenchConfig(
        host=rpi_server.host,
        port=rpi_server.port,
        concurrency=8,
        duration=None,
        count=40,
        warmup=0.0,
        timeout=10.0,
        queries_per_association=2,
    )
    result = await generator.run(config, plan)
    stats = result.stats
    server = rpi_server.stats
    assert stats.completed == 40
    assert stats.error_count == 0
    assert stats.queries == 80
    assert server.total_queries() == 80
    pending = server.queries[("general", FindStatus.PENDING)]
    assert stats.pending_responses == pending
    assert stats.statuses[FindStatus.SUCCESS] == pending + server.queries[("general", 0)]
    assert stats.statuses[FindStatus.MORE_THAN_ONE_MATCH] == server.queries[("general", 0xC100)]
    assert set(stats.statuses_by_kind[QueryKind.DUP]) == {FindStatus.MORE_THAN_ONE_MATCH}
    assert set(stats.statuses_by_kind[QueryKind.MISS]) == {FindStatus.SUCCESS}
    assert server.associations_accepted >= 40
