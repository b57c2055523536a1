"""The load generator against real servers on 127.0.0.1: counts must match the server's."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from rpi_async.bench import generator, report
from rpi_async.bench.identifier import QueryModel
from rpi_async.bench.mix import DUP_ID, Mix, QueryKind, QueryPlan, read_patients_file
from rpi_async.bench.pdu import encode_associate_rq
from rpi_async.bench.session import ErrorKind
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import SopClass
from tests.bench.bench_peers import CountingScp, RawServer

pytestmark = pytest.mark.network


def make_plan(tmp_path: Path, ids: list[str], mix: str = "hit=0.8,miss=0.1,dup=0.1") -> QueryPlan:
    patients = tmp_path / "patients.txt"
    patients.write_text("\n".join(ids) + "\n", encoding="utf-8")
    return QueryPlan(
        read_patients_file(patients),
        Mix.parse(mix),
        sop_class=SopClass.GENERAL_RPI_QUERY,
        model=QueryModel.RPI,
        template_id="9007",
        seed=7,
    )


def bench_config(port: int, **changes: Any) -> generator.BenchConfig:
    base = generator.BenchConfig(
        host="127.0.0.1",
        port=port,
        concurrency=4,
        duration=None,
        count=30,
        warmup=0.0,
        timeout=5.0,
        queries_per_association=3,
    )
    return dataclasses.replace(base, **changes)


def hit_ids(scp: CountingScp) -> list[str]:
    return [pid for pid in scp.answers if pid != DUP_ID]


async def test_counts_match_the_server(tmp_path: Path, counting_scp: CountingScp) -> None:
    scp = counting_scp
    plan = make_plan(tmp_path, hit_ids(scp))
    result = await generator.run(bench_config(scp.port), plan)
    stats = result.stats

    assert stats.started == 30
    assert stats.completed == 30
    assert stats.error_count == 0
    assert scp.requested == 30
    assert stats.queries == 90
    assert scp.finds == 90
    assert stats.pending_responses == scp.pendings
    assert dict(stats.statuses) == dict(scp.finals)
    # Each kind gets the answer the server gives it: misses 0000, the duplicate C100.
    assert set(stats.statuses_by_kind[QueryKind.MISS]) == {FindStatus.SUCCESS}
    assert set(stats.statuses_by_kind[QueryKind.DUP]) == {FindStatus.MORE_THAN_ONE_MATCH}
    hits = stats.statuses_by_kind[QueryKind.HIT]
    assert set(hits) == {FindStatus.SUCCESS, FindStatus.UNABLE_TO_PROCESS}
    assert stats.pending_responses == hits[FindStatus.SUCCESS]
    assert stats.association.count == 30
    assert stats.query.count == 90
    assert stats.association.percentile_ms(50) > 0


async def test_open_loop_counts_from_intended_start(
    tmp_path: Path, counting_scp: CountingScp
) -> None:
    scp = counting_scp
    plan = make_plan(tmp_path, hit_ids(scp), mix="hit=1")
    config = bench_config(
        scp.port,
        rate=200.0,
        count=20,
        queries_per_association=1,
        concurrency=2,
    )
    result = await generator.run(config, plan)
    assert result.stats.completed == 20
    assert scp.requested == 20
    assert scp.finds == 20
    assert sum(s.associations for s in result.stats.seconds) == 20


async def test_duration_run_stops_and_excludes_warmup(
    tmp_path: Path, counting_scp: CountingScp
) -> None:
    scp = counting_scp
    plan = make_plan(tmp_path, hit_ids(scp))
    config = bench_config(
        scp.port,
        count=None,
        duration=0.5,
        warmup=0.3,
        queries_per_association=1,
    )
    result = await generator.run(config, plan)
    assert result.stats.completed > 0
    assert result.stats.error_count == 0
    # Associations started during the warm-up reached the server but are not counted.
    assert scp.requested > result.stats.started
    assert result.window >= 0.5


async def test_rejection_is_counted_with_reason(tmp_path: Path, strict_scp: CountingScp) -> None:
    scp = strict_scp
    plan = make_plan(tmp_path, hit_ids(scp))
    config = bench_config(scp.port, called_ae="WRONG_AE", count=5)
    result = await generator.run(config, plan)
    assert result.stats.errors == {ErrorKind.REJECTED: 5}
    assert result.stats.completed == 0
    (detail,) = result.stats.error_details
    assert "called AE title not recognized" in detail
    with pytest.raises(generator.TargetUnusable, match="association rejected by"):
        await generator.probe(config, encode_associate_rq("WRONG_AE", "BENCH", plan.sop_class))


async def test_abort_is_counted(tmp_path: Path, aborting_server: RawServer) -> None:
    plan = make_plan(tmp_path, ["DEMO000001"])
    config = bench_config(aborting_server.port, count=6)
    result = await generator.run(config, plan)
    assert result.stats.errors == {ErrorKind.ABORTED: 6}
    assert aborting_server.connections == 6


async def test_silent_server_times_out_and_run_stops(
    tmp_path: Path, silent_server: RawServer
) -> None:
    plan = make_plan(tmp_path, ["DEMO000001"])
    config = bench_config(
        silent_server.port,
        count=None,
        duration=0.6,
        timeout=0.3,
        concurrency=3,
    )
    result = await asyncio.wait_for(generator.run(config, plan), config.hard_deadline + 5)
    assert result.stats.completed == 0
    assert result.stats.errors[ErrorKind.TIMED_OUT] == result.stats.started
    assert result.stats.started >= 3
    # Timed out associations count in the latency figures, as the time they were given.
    assert result.stats.association.count == result.stats.started
    assert result.stats.association.percentile_ms(50) >= 300


async def test_hard_deadline_cancels_and_counts_as_timed_out(
    tmp_path: Path, silent_server: RawServer
) -> None:
    plan = make_plan(tmp_path, ["DEMO000001"])
    config = bench_config(
        silent_server.port,
        count=None,
        duration=5.0,
        timeout=30.0,
        deadline=0.5,
        concurrency=2,
    )
    result = await asyncio.wait_for(generator.run(config, plan), 10)
    assert result.forced_stop == 2
    assert result.stats.errors == {ErrorKind.TIMED_OUT: 2}


async def test_garbage_is_a_protocol_error(tmp_path: Path, garbage_server: RawServer) -> None:
    plan = make_plan(tmp_path, ["DEMO000001"])
    result = await generator.run(bench_config(garbage_server.port, count=4), plan)
    assert result.stats.errors == {ErrorKind.PROTOCOL_ERROR: 4}
    assert garbage_server.connections == 4


async def test_refused_port_is_counted(tmp_path: Path, free_port: int) -> None:
    plan = make_plan(tmp_path, ["DEMO000001"])
    result = await generator.run(bench_config(free_port, count=3), plan)
    assert result.stats.errors == {ErrorKind.REFUSED: 3}


async def test_hold_keeps_idle_associations(tmp_path: Path, counting_scp: CountingScp) -> None:
    scp = counting_scp
    plan = make_plan(tmp_path, hit_ids(scp))
    config = bench_config(scp.port, hold=5, count=4)
    result = await generator.run(config, plan)
    assert result.hold.established == 5
    assert result.hold.released == 5
    assert result.hold.dropped == 0
    assert result.stats.completed == 4
    assert scp.requested == 9


async def test_open_loop_falling_behind_is_reported(
    tmp_path: Path, counting_scp: CountingScp
) -> None:
    plan = make_plan(tmp_path, hit_ids(counting_scp), mix="hit=1")
    # One association at a time, 2,000 due per second: most start late.
    config = bench_config(counting_scp.port, count=40, rate=2000.0, concurrency=1)
    result = await generator.run(config, plan)
    data = report.result_dict(result, plan)
    assert data["schedule"]["late_starts"] > 0
    warning = report.schedule_warning(data)
    assert warning is not None
    assert "fell behind" in warning
