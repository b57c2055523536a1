"""The serving process: its collector settings after start-up, its lifecycle."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpi_async import scu
from rpi_async.server import GC_THRESHOLDS, Server, tune_collector
from rpi_async.sr.prerender import prerender
from rpi_async.store.schema import connect_writer
from tests.conftest import server_settings


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector_restored")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    kept = [object() for _ in range(10)]  # something alive at start-up
    tune_collector()
    assert gc.get_freeze_count() > len(kept)
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.isenabled()


async def test_lifecycle_in_a_task_group(sample_db: Path) -> None:
    """The engine and the server's other tasks share one task group: a failing background
    task is logged and the engine serves on; a start-up error is the engine's own."""
    settings = server_settings(sample_db, "native")
    async with Server(settings) as server:
        assert server._tasks is not None

        async def fails() -> None:
            raise OSError("disk gone")

        server._spawn(fails)
        await asyncio.sleep(0.05)
        assert await asyncio.to_thread(scu.echo, "127.0.0.1", server.port, timeout=10) == 0
    assert server._tasks is None


@pytest.fixture
def port_taken() -> Iterator[int]:
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
        holder.bind(("127.0.0.1", 0))
        holder.listen(1)
        yield holder.getsockname()[1]


async def test_engine_start_up_error_is_raised_as_is(sample_db: Path, port_taken: int) -> None:
    settings = server_settings(sample_db, "native", port=port_taken)
    server = Server(settings)
    with pytest.raises(OSError, match="in use") as caught:
        await server.start()
    assert not isinstance(caught.value, BaseExceptionGroup)
    assert server._tasks is None


OUTDATED = "rpi-async db prerender"


def _outdated_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "rpi_async.server"
        and r.levelno == logging.WARNING
        and OUTDATED in r.getMessage()
    ]


async def test_no_warning_when_the_stored_answers_are_this_versions(
    sample_db: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="rpi_async")
    async with Server(server_settings(sample_db, "native")) as server:
        assert server.store_identity is not None
        assert server.store_identity.answer_renderers == {server.renderer.fingerprint}
    assert _outdated_warnings(caplog) == []


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("UPDATE answer SET renderer = '0123456789abcdef'", "another version of rpi-async"),
        (
            "UPDATE answer SET renderer = '0123456789abcdef' WHERE rowid = "
            "(SELECT max(rowid) FROM answer)",
            "another version of rpi-async",
        ),
        ("DELETE FROM answer", "has no stored answers"),
    ],
    ids=["upgraded", "prerender-interrupted", "none-stored"],
)
async def test_outdated_stored_answers_are_a_warning_until_prerendered(
    sample_db: Path, caplog: pytest.LogCaptureFixture, change: str, said: str
) -> None:
    """A file whose stored answers another version rendered (or that has none) is served,
    every hit rendered live, with one WARNING that names the command; after ``db
    prerender`` and a reload there is none."""
    with sqlite3.connect(sample_db) as conn:
        conn.execute(change)
    conn.close()
    caplog.set_level(logging.INFO, logger="rpi_async")
    async with Server(server_settings(sample_db, "native")) as server:
        [warning] = _outdated_warnings(caplog)
        assert said in warning
        assert f"--db {sample_db}" in warning
        caplog.clear()
        conn = connect_writer(sample_db)
        try:
            assert prerender(conn, sample_db, workers=1) > 0
        finally:
            conn.close()
        assert await server.reload() is True
        assert _outdated_warnings(caplog) == []
