"""The event loop never waits for the disk, and SIGTERM ends idle associations at once."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rpi_async import scu
from rpi_async.dicom.status import FindStatus
from tests.conftest import ServerThread, server_settings
from tests.ops.ops_support import raw_associate
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.network

SLOW_READ = 0.2  # seconds every store statement takes, on the store's own threads


def test_echo_answered_while_store_reads_are_slow(sample_db: Path, engine: str) -> None:
    thread = ServerThread(server_settings(sample_db, engine, store_readers=2))
    srv = thread.start()
    server = thread._server
    assert server is not None
    assert server.store is not None

    def slow(statement: str) -> None:
        time.sleep(SLOW_READ)  # once per statement, on the connection's thread: a slow disk

    async def slow_down() -> None:
        assert server.store is not None
        for conn in server.store.connections:
            await conn.set_trace_callback(slow)

    asyncio.run_coroutine_threadsafe(slow_down(), thread._loop).result(10)
    pool = ThreadPoolExecutor(2)
    try:
        request = scu.build_request("P0001", "HOSP_A")
        queries = [pool.submit(scu.find, srv.host, srv.port, request, timeout=20) for _ in range(2)]
        time.sleep(SLOW_READ / 2)  # both queries are now in their slow reads
        assoc = raw_associate(srv.port)
        assert assoc.is_established
        started = time.perf_counter()
        status = assoc.send_c_echo()
        echo_seconds = time.perf_counter() - started
        assoc.release()
        assert status.Status == 0
        assert not all(q.done() for q in queries)  # the reads were still running
        for query in queries:
            assert [r.status for r in query.result(20)] == [FindStatus.PENDING, 0]
    finally:
        pool.shutdown()
        thread.stop()
    assert echo_seconds < 0.05, f"C-ECHO took {echo_seconds * 1000:.0f} ms"


def test_sigterm_with_idle_associations_exits_at_once(sample_db: Path, engine: str) -> None:
    proc = ServeProcess(
        ["--db", str(sample_db), "--port", "0", "--engine", engine],
        env={"RPI_ASYNC_SHUTDOWN_GRACE": "10"},
    )
    held = []
    try:
        port = proc.wait_listening()
        held = [raw_associate(port) for _ in range(3)]
        assert all(a.is_established for a in held)
        started = time.monotonic()
        code = proc.stop(timeout=10)
        took = time.monotonic() - started
    finally:
        proc.kill()
        for assoc in held:
            assoc.abort()
    assert code == 0
    assert took < 3.0, f"stopping took {took:.1f} s with idle associations open"


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_accepted_connections_have_nodelay(loop: str) -> None:
    """The native engine leaves TCP_NODELAY to the loop: both loops it runs on set it on
    every accepted TCP socket (a response is sent in one write and must not wait for
    the peer's delayed ACK)."""
    import socket

    import uvloop

    async def accepted_nodelay() -> int:
        got: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Accepting(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                got.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Accepting, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            value = await asyncio.wait_for(got, 5)
            writer.close()
            return value
        finally:
            server.close()

    run = uvloop.run if loop == "uvloop" else asyncio.run
    assert run(accepted_nodelay()) == 1
