"""The metrics port over loopback: counters after real queries, /healthz, /readyz."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rpi_async import scu
from rpi_async.store.reader import PatientStore
from tests.conftest import server_settings
from tests.ops.ops_support import OpsServerThread, http_get, raw_associate

pytestmark = pytest.mark.network


def samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = http_get(port, "/metrics")
    assert status == 200
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def ops_server(sample_db: Path, engine: str) -> OpsServerThread:
    return OpsServerThread(server_settings(sample_db, engine, metrics_port=0))


def test_counters_follow_real_traffic(ops_server: OpsServerThread) -> None:
    srv = ops_server.start()
    try:
        port = ops_server.metrics_port
        before = samples(port)
        assert value(before, "rpi_queries_total", sop="general", status="FF00") == 0
        assert all(name.startswith("rpi_") for name, _ in before)
        scu.find(srv.host, srv.port, scu.build_request("P0001", "HOSP_A"), timeout=10)
        scu.find(srv.host, srv.port, scu.build_request("NOBODY"), timeout=10)
        scu.echo(srv.host, srv.port, timeout=10)
        assert raw_associate(srv.port, aec="NOT_US").is_rejected
        after = samples(port)
        assert value(after, "rpi_queries_total", sop="general", status="FF00") == 1
        assert value(after, "rpi_queries_total", sop="general", status="0000") == 1
        assert value(after, "rpi_echoes_total") == 1
        assert value(after, "rpi_associations_total") == 3
        reason = "called-ae-title-not-recognized"
        assert value(after, "rpi_associations_rejected_total", reason=reason) == 1
        assert value(after, "rpi_queries_in_flight") == 0
        assert value(after, "rpi_queries_shed_total") == 0
        assert (("rpi_info", (("engine", srv.settings.engine), ("version", "0.1.0")))) in after
    finally:
        ops_server.stop()


def test_latency_histograms_after_queries(ops_server: OpsServerThread) -> None:
    srv = ops_server.start()
    try:
        for _ in range(3):
            scu.find(srv.host, srv.port, scu.build_request("P0001", "HOSP_A"), timeout=10)
        found = samples(ops_server.metrics_port)
        assert value(found, "rpi_query_duration_seconds_count", sop="general") == 3
        assert value(found, "rpi_store_lookup_duration_seconds_count") == 3
    finally:
        ops_server.stop()


def test_health_and_readiness(ops_server: OpsServerThread) -> None:
    ops_server.start()
    try:
        port = ops_server.metrics_port
        assert http_get(port, "/healthz") == (200, "ok\n")
        assert http_get(port, "/readyz") == (200, "ready\n")
        assert http_get(port, "/nothing")[0] == 404
        db = ops_server.settings.db
        assert db is not None
        Path(db).unlink()
        status, body = http_get(port, "/readyz")
        assert status == 503
        assert "missing or unreadable" in body
        assert http_get(port, "/healthz")[0] == 200  # alive, just not ready
    finally:
        ops_server.stop()


def test_not_ready_while_stopping(
    ops_server: OpsServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate, entered = threading.Event(), threading.Event()
    lookup = PatientStore.lookup_compact

    async def stalled(store: PatientStore, *args: Any) -> Any:
        entered.set()
        await asyncio.to_thread(gate.wait, 20)
        return await lookup(store, *args)

    monkeypatch.setattr(PatientStore, "lookup_compact", stalled)
    srv = ops_server.start()
    pool = ThreadPoolExecutor(1)
    # A query in progress keeps the server draining after stop() (idle ones end at once).
    query = pool.submit(scu.find, srv.host, srv.port, scu.build_request("P0001"), timeout=20)
    try:
        assert entered.wait(20)
        port = ops_server.metrics_port
        assert http_get(port, "/readyz")[0] == 200
        ops_server.request_stop()
        status, body = http_get(port, "/readyz")
        assert status == 503
        assert "not accepting" in body
    finally:
        gate.set()
        statuses = [r.status for r in query.result(20)]
        pool.shutdown()
        ops_server.stop()
    assert statuses == [0xFF00, 0]  # the operation in progress was answered


def test_not_ready_while_store_reads_fail(ops_server: OpsServerThread) -> None:
    """Garbage written over the live database file in place: a real lookup fails, so
    /readyz says 503 (naming no file), and 200 again once reads succeed."""
    ops_server.start()
    try:
        port = ops_server.metrics_port
        db = Path(str(ops_server.settings.db))
        original = db.read_bytes()
        assert http_get(port, "/readyz")[0] == 200
        page = int.from_bytes(original[16:18], "big")  # the header and schema page stay
        with db.open("r+b") as f:
            f.seek(page)
            f.write(b"\xa5" * (len(original) - page))
        status, body = http_get(port, "/readyz")
        assert status == 503
        assert str(db) not in body
        assert db.name not in body
        with db.open("r+b") as f:
            f.write(original)
        assert http_get(port, "/readyz") == (200, "ready\n")
    finally:
        ops_server.stop()
