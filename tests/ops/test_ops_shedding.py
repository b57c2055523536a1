"""Load shedding: the limiter and hook alone, then A700 at once over loopback."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rpi_async import scu
from rpi_async.dicom.status import FindStatus
from rpi_async.errors import StoreUnavailable
from rpi_async.ops.hooks import QueryHooks, QueryShed
from rpi_async.ops.shedding import InFlightLimiter
from rpi_async.service.query import Peer
from rpi_async.store.reader import PatientStore
from tests.conftest import server_settings
from tests.ops.ops_support import OpsServerThread

PEER = Peer("SCU", "127.0.0.1", 40000)


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


def test_watch_admits_sheds_and_gives_back() -> None:
    hooks = QueryHooks(InFlightLimiter(1))
    first = hooks.begin(PEER, "general")
    first.admit()
    second = hooks.begin(PEER, "general")
    with pytest.raises(QueryShed) as info:
        second.admit()
    assert isinstance(info.value, StoreUnavailable)  # the service answers it A700
    second.end(int(FindStatus.OUT_OF_RESOURCES))
    assert hooks.limiter.in_flight == 1  # a shed query held no slot
    first.end(None)  # interrupted: the slot comes back too
    first.end(0)  # idempotent
    assert hooks.limiter.in_flight == 0
    third = hooks.begin(PEER, "general")
    third.admit()
    assert hooks.limiter.in_flight == 1


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
