"""Server CPU per association of the native engine, in process, without a network.

    python -m benchmarks.assoc_cpu --db /tmp/rpi/demo100k.sqlite3 [-n 20000] [--profile]

Drives ``AssociationProtocol``, the native engine's per-connection adapter, through whole
associations over an in-memory transport: A-ASSOCIATE-RQ, one C-FIND, A-RELEASE-RQ and
the close, with the generator's own pre-encoded PDUs (``rpi_async.bench``: the same
request bytes, patients drawn uniformly from the demo population, the suite's mix of
hits, misses and the duplicate). Everything the server does for an association runs:
negotiation, access policy, the QueryService with its hooks, the store lookup, the SR
rendering, the response encoding, timers, the access log line (to a file) and the
collector settings of a serving process (``--default-gc`` leaves CPython's). What does not
run: the kernel's TCP work and uvloop's socket handling.

On this shared machine the suite's figures drift by a third over minutes, because the
load generator shares the two cores with the server. This script measures the server's
own CPU time per association (``time.process_time``), so an optimisation of a few per
cent shows, and the event loop thread's part of it (``time.thread_time``): under load that
thread saturates first, while the store's reader threads run in SQLite without the
GIL, beside it. Each figure is the best of ``--repeat`` passes. ``--profile`` runs one
pass under cProfile and prints the top functions by internal time.

Associations run one after another, so every store lookup is a batch of one and pays a
whole hand-off to a reader thread, which under load is shared by the 7-10 lookups of a
batch; ``--store-inline`` looks patients up on the loop's thread instead. ``--answer-once``
answers every query with the first match: what is left is the association's own cost,
without the query path.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import logging
import pstats
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop

from benchmarks.suite import MIX
from rpi_async import logs
from rpi_async.bench.identifier import QueryModel
from rpi_async.bench.mix import Mix, QueryPlan, demo_hits
from rpi_async.bench.pdu import RELEASE_RQ, encode_associate_rq
from rpi_async.config.settings import Settings
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import SopClass, TransferSyntax
from rpi_async.engines.access import AccessPolicy
from rpi_async.engines.base import EngineContext, ServiceSlot
from rpi_async.engines.lifecycle import Outcome
from rpi_async.engines.native.engine import NativeEngine
from rpi_async.engines.native.protocol import AssociationProtocol
from rpi_async.ops.hooks import QueryHooks
from rpi_async.ops.shedding import InFlightLimiter
from rpi_async.server import tune_collector
from rpi_async.service.query import QueryService
from rpi_async.service.stats import ServerStats
from rpi_async.sr.render_bytes import Renderer
from rpi_async.store.reader import PatientStore

EXPLICIT_VR_LITTLE_ENDIAN = str(TransferSyntax.EXPLICIT_VR_LE)
A_RELEASE_RP = b"\x06"


class MemoryTransport:
    """Enough of an asyncio transport for one association: collects what is written."""

    def __init__(self, protocol: AssociationProtocol, port: int) -> None:
        self.protocol = protocol
        self.port = port
        self.written = 0
        self.closing = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return ("127.0.0.1", self.port)
        return default

    def write(self, data: bytes) -> None:
        self.written += len(data)
        if data[:1] == A_RELEASE_RP:  # the peer has its answer and closes the connection
            self._lose()

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self._lose()

    def _lose(self) -> None:
        if not self.closing:
            self.closing = True
            # As a real transport does: connection_lost follows on a later loop turn.
            asyncio.get_running_loop().call_soon(self.protocol.connection_lost, None)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


async def one_pass(
    engine: NativeEngine, plan: QueryPlan, rq: bytes, count: int
) -> tuple[float, float]:
    """CPU seconds for ``count`` whole associations: the process's, the loop thread's."""
    started, started_loop = time.process_time(), time.thread_time()
    for n in range(count):
        protocol = AssociationProtocol(engine)
        transport = MemoryTransport(protocol, 1024 + n % 60000)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        # The release request waits in the adapter until the C-FIND has been answered.
        protocol.data_received(rq)
        accepted = next(iter(protocol.conn.accepted_contexts.values()))
        explicit = accepted.transfer_syntax == EXPLICIT_VR_LITTLE_ENDIAN
        pdus = plan.explicit_pdus if explicit else plan.implicit_pdus
        protocol.data_received(pdus[plan.next_index()])
        protocol.data_received(RELEASE_RQ)
        await protocol.closed
        if protocol.record.outcome is not Outcome.RELEASED:
            raise RuntimeError(f"association {n} was not released: {protocol.record}")
    return time.process_time() - started, time.thread_time() - started_loop


def _time_queries(service: QueryService, *, answer_once: bool = False) -> list[float]:
    """Wrap ``service.find`` to add its CPU time to the returned cell.

    ``answer_once``: queries are answered by the service until one matches, every later
    one gets that match back at once, so that a pass measures the association without the query
    path (the lookup, the stored answer's splice, the request's parse and rules, the
    service's hooks); its response is still encoded and written."""
    spent = [0.0]
    inner = service.find
    first: list[Any] = []

    async def timed(*args: Any, **kwargs: Any) -> Any:
        if first:
            return first[0]
        started = time.process_time()
        try:
            answer = await inner(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - started
        if answer_once and answer.status is FindStatus.PENDING:
            first.append(answer)
        return answer

    service.find = timed  # type: ignore[method-assign]
    return spent


async def run(args: argparse.Namespace) -> None:
    settings = Settings(db=args.db, engine="native", max_associations=1 << 20)
    renderer = Renderer()  # as Server does: one per process
    store = await PatientStore.open(args.db, inline=args.store_inline)
    stats = ServerStats()
    monitor = QueryHooks(InFlightLimiter(0), called_ae=settings.ae_title)
    service = QueryService(
        store,
        stats=stats,
        monitor=monitor,
        query_timeout=settings.query_timeout,
        renderer=renderer,
    )
    in_query = _time_queries(service, answer_once=args.answer_once)
    engine = NativeEngine(
        EngineContext(settings, ServiceSlot(service), stats, AccessPolicy(), None)
    )
    engine._loop = asyncio.get_running_loop()
    plan = QueryPlan(
        demo_hits(args.patients),
        Mix.parse(MIX),
        sop_class=SopClass.GENERAL_RPI_QUERY,
        model=QueryModel.RPI,
        template_id="9007",
    )
    rq = encode_associate_rq(settings.ae_title, "BENCH", plan.sop_class)
    try:
        await one_pass(engine, plan, rq, min(args.n, 2000))  # warm-up
        if not args.default_gc:
            tune_collector()  # as Server.run does once it is serving
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            await one_pass(engine, plan, rq, args.n)
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
            return
        passes = []
        for _ in range(args.repeat):
            in_query[0] = 0.0
            total, loop_thread = await one_pass(engine, plan, rq, args.n)
            passes.append((total, loop_thread, in_query[0]))
        total, loop_thread, query = min(passes)
        print(
            f"{total / args.n * 1e6:.1f} µs of server CPU per association, of which "
            f"{loop_thread / args.n * 1e6:.1f} µs on the event loop's thread and "
            f"{query / args.n * 1e6:.1f} µs in QueryService.find "
            f"(best of {args.repeat} passes of {args.n}; {socket.gethostname()})"
        )
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/rpi/demo100k.sqlite3"))
    parser.add_argument("--patients", type=int, default=100_000, help="demo population size")
    parser.add_argument("-n", type=int, default=20_000, help="associations per pass")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--default-gc",
        action="store_true",
        help="keep CPython's collector settings (the server tunes them: server.tune_collector)",
    )
    parser.add_argument("--top", type=int, default=35)
    parser.add_argument(
        "--store-inline",
        action="store_true",
        help="look patients up on the loop's thread (store_inline) instead of through aiosqlite",
    )
    parser.add_argument(
        "--answer-once",
        action="store_true",
        help="answer every query with the first match: the association without the query path",
    )
    args = parser.parse_args()
    with tempfile.NamedTemporaryFile("w", suffix=".log") as log_file:
        # The access log at INFO, as a server writes it, but to a file.
        handler = logging.StreamHandler(log_file)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
        logging.getLogger().addHandler(handler)
        logs.skip_record_lookups()  # as logs.configure does for a server
        logging.getLogger().setLevel(logging.INFO)
        uvloop.run(run(args))


if __name__ == "__main__":
    main()
