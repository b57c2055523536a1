"""C-CANCEL and timeouts, made deterministic by stalling the store on an event."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rpi_async import scu
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import SopClass
from rpi_async.store.reader import PatientStore
from tests.conftest import RunningServer, ServerThread, server_settings
from tests.engines.scu_tools import associate

pytestmark = pytest.mark.network


class Stall:
    """Makes every store lookup wait until ``release()``; says when one is waiting."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._gate: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # The pynetdicom engine's path calls lookup, the native engine's lookup_compact.
        for name in ("lookup", "lookup_compact"):
            monkeypatch.setattr(PatientStore, name, self._stalled(getattr(PatientStore, name)))

    def _stalled(self, original: Any) -> Any:
        stall = self

        async def stalled(store: PatientStore, *args: Any) -> Any:
            stall._loop = asyncio.get_running_loop()
            if stall._gate is None:
                stall._gate = asyncio.Event()
            stall.entered.set()
            await stall._gate.wait()
            return await original(store, *args)

        return stalled

    def release(self) -> None:
        assert self._loop is not None
        assert self._gate is not None
        self._loop.call_soon_threadsafe(self._gate.set)


@pytest.fixture
def stall(monkeypatch: pytest.MonkeyPatch) -> Stall:
    s = Stall()
    s.install(monkeypatch)
    return s


@pytest.fixture
def slow_server(sample_db: Path, engine: str, stall: Stall) -> Iterator[RunningServer]:
    thread = ServerThread(server_settings(sample_db, engine, query_timeout=30))
    running = thread.start()
    try:
        yield running
    finally:
        if stall._gate is not None:
            stall.release()
        thread.stop()


def test_cancel_before_the_answer_gives_fe00(slow_server: RunningServer, stall: Stall) -> None:
    assoc = associate(slow_server.host, slow_server.port)
    assert assoc.is_established
    try:
        request = scu.build_request("P0001", "HOSP_A")
        with ThreadPoolExecutor(1) as pool:
            answers = pool.submit(
                lambda: [
                    int(status.Status)
                    for status, _ in assoc.send_c_find(
                        request, SopClass.GENERAL_RPI_QUERY, msg_id=11
                    )
                ]
            )
            assert stall.entered.wait(10)
            context_id = assoc.accepted_contexts[0].context_id
            assoc.send_c_cancel(11, context_id)
            # The cancel must be in before the store answers: wait until the server has it.
            assert slow_server.stats.wait_for_cancels(1, 10)
            stall.release()
            statuses = answers.result(10)
    finally:
        assoc.release()
    assert statuses == [FindStatus.CANCEL]


def test_query_slower_than_timeout_gets_a700(sample_db: Path, engine: str, stall: Stall) -> None:
    thread = ServerThread(server_settings(sample_db, engine, query_timeout=0.5))
    srv = thread.start()
    try:
        responses = scu.find(srv.host, srv.port, scu.build_request("P0001", "HOSP_A"), timeout=10)
        assert [r.status for r in responses] == [FindStatus.OUT_OF_RESOURCES]
        assert stall.entered.is_set()
    finally:
        stall.release()
        thread.stop()
