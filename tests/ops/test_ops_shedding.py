"""Load shedding: the limiter and hook alone, then A700 at once over loopback."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pynetdicom.dsutils import encode

from rpi_async import scu
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.transfer import IMPLICIT
from rpi_async.dicom.uids import SopClass
from rpi_async.ops.hooks import QueryHooks
from rpi_async.ops.shedding import InFlightLimiter
from rpi_async.service.query import Peer, QueryService
from rpi_async.store.reader import PatientStore
from tests.conftest import server_settings
from tests.ops.ops_support import OpsServerThread

PEER = Peer("SCU", "127.0.0.1", 40000)
GENERAL = SopClass.GENERAL_RPI_QUERY.value


def test_limiter_counts_and_refuses() -> None:
    limiter = InFlightLimiter(2)
    assert limiter.try_enter()
    assert limiter.try_enter()
    assert not limiter.try_enter()
    assert (limiter.in_flight, limiter.shed) == (2, 1)
    limiter.leave()
    assert limiter.try_enter()
    assert (limiter.in_flight, limiter.shed) == (2, 1)


def test_unlimited_limiter_only_counts() -> None:
    limiter = InFlightLimiter(0)
    for _ in range(100):
        assert limiter.try_enter()
    assert (limiter.in_flight, limiter.shed) == (100, 0)
    with pytest.raises(ValueError, match="limit"):
        InFlightLimiter(-1)


def test_hooks_admit_shed_and_give_back() -> None:
    hooks = QueryHooks(InFlightLimiter(1))
    assert hooks.admit()
    assert not hooks.admit()  # the service answers this one A700 at once
    assert hooks.limiter.in_flight == 1  # a shed query holds no slot
    hooks.release()
    assert hooks.limiter.in_flight == 0
    assert hooks.admit()
    assert hooks.limiter.in_flight == 1


async def test_service_answers_a700_when_shed(sample_db: Path) -> None:
    hooks = QueryHooks(InFlightLimiter(1))
    store = await PatientStore.open(sample_db)
    try:
        service = QueryService(store, monitor=hooks)
        assert hooks.admit()  # a query in flight elsewhere
        data = encode(scu.build_request("P0001", "HOSP_A"), True, True)
        answer = await service.find(data, IMPLICIT, GENERAL, PEER)
        assert answer.status is FindStatus.OUT_OF_RESOURCES
        assert answer.keys.patient_id == "P0001"  # audited with what it asked for
        hooks.release()
        answer = await service.find(data, IMPLICIT, GENERAL, PEER)
        assert answer.status is FindStatus.PENDING
        assert hooks.limiter.in_flight == 0
    finally:
        await store.close()


class StalledStore:
    """Every store read waits for ``gate``; ``entered`` counts the reads that started,
    and ``decided`` is set when more than ``limit`` did (the test then knows at once)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
        self.gate = threading.Event()
        self.decided = threading.Event()
        self.entered = threading.Semaphore(0)
        self.count = 0
        self.limit = limit
        self._lock = threading.Lock()
        for name in ("lookup", "lookup_compact"):
            original = getattr(PatientStore, name, None)
            if original is not None:
                monkeypatch.setattr(PatientStore, name, self._stalled(original))

    def _stalled(self, original: Any) -> Any:
        async def stalled(store: PatientStore, *args: Any, **kwargs: Any) -> Any:
            with self._lock:
                self.count += 1
                if self.count > self.limit:
                    self.decided.set()
            self.entered.release()
            await asyncio.to_thread(self.gate.wait, 30)
            return await original(store, *args, **kwargs)

        return stalled


@pytest.mark.network
def test_query_beyond_max_in_flight_gets_a700_at_once(
    sample_db: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    limit = 2
    store = StalledStore(monkeypatch, limit)
    thread = OpsServerThread(server_settings(sample_db, engine, max_in_flight=limit))
    srv = thread.start()
    request = scu.build_request("P0001", "HOSP_A")

    def query() -> list[scu.FindResponse]:
        return scu.find(srv.host, srv.port, request, timeout=20)

    pool = ThreadPoolExecutor(limit + 1)
    try:
        stalled = [pool.submit(query) for _ in range(limit)]
        for _ in range(limit):
            assert store.entered.acquire(timeout=30), "queries did not reach the store"
        extra = pool.submit(query)  # while the others stall
        extra.add_done_callback(lambda _: store.decided.set())
        assert store.decided.wait(30)
        assert extra.done(), "the extra query reached the store instead of being shed"
        responses = extra.result()
        assert [r.status for r in responses] == [FindStatus.OUT_OF_RESOURCES]
        assert "busy" in (responses[0].error_comment or "").lower()
        assert not any(f.done() for f in stalled)
        assert thread.server.limiter.shed == 1
    finally:
        store.gate.set()
        results = [[r.status for r in f.result(30)] for f in stalled]
        pool.shutdown()
        thread.stop()
    assert results == [[FindStatus.PENDING, FindStatus.SUCCESS]] * limit
