"""Per-stage cost of one RPI query, from request bytes to response bytes, without a network.

    python -m benchmarks.query_path --db /tmp/rpi/demo100k.sqlite3 [-n 2000] [--path both]

For each template (9007, 9000, 3802) the script draws ``-n`` patients uniformly from the
demo population (``DEMO000001``...), builds each request as the load generator sends it
(``rpi_async.bench.identifier``: name, ID, birth date, sex, Content Template Sequence)
and times every stage of the query path, in microseconds per query (mean and p50):

- ``pydicom`` path, as ``QueryService.find`` and pydicom's writer do it: decode the
  identifier (pydicom ``read_dataset``), look the patient up, render a Dataset, encode it
  (``write_dataset``);
- ``fast`` path, as the native engine does it: parse the request (cold: the request
  cache is cleared before every query), look the patient up, render straight to bytes;
  ``find`` is the whole ``QueryService.find`` call (request cache on).

Each patient is queried once per stage set; the store is opened read-only like the
server's, so page-cache effects are those of a running server after warm-up (one
warm-up pass over the same patients comes first).
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

from rpi_async.bench.identifier import IdentifierTemplate, QueryModel
from rpi_async.dicom.transfer import read_identifier as decode_identifier
from rpi_async.dicom.transfer import write_identifier as encode_identifier
from rpi_async.dicom.uids import SopClass, TransferSyntax
from rpi_async.service.query import Peer, QueryService
from rpi_async.service.request import RequestReader
from rpi_async.service.rules import Query
from rpi_async.sr import registry
from rpi_async.sr.render import render_identifier
from rpi_async.sr.render_bytes import Renderer
from rpi_async.store.reader import PatientStore

TEMPLATES = ("9007", "9000", "3802")
SOP = SopClass.GENERAL_RPI_QUERY
MAX_INFLATED = 16 * 1024 * 1024


def _stats(samples: list[int]) -> tuple[float, float]:
    us = [s / 1000 for s in samples]
    return statistics.fmean(us), statistics.median(us)


async def _time_pydicom(
    store: PatientStore, requests: list[bytes], tid: str, ts: str, now: datetime
) -> dict[str, list[int]]:
    template = registry.TEMPLATES[tid]
    out: dict[str, list[int]] = {k: [] for k in ("decode", "lookup", "render", "encode")}
    clock = time.perf_counter_ns
    for data in requests:
        t0 = clock()
        ds = decode_identifier(data, ts, MAX_INFLATED)
        patient_id = str(ds.PatientID)
        t1 = clock()
        records = await store.lookup(patient_id, None)
        t2 = clock()
        rendered = render_identifier(records[0], template, ds, observation_datetime=now)
        t3 = clock()
        encode_identifier(rendered, ts)
        t4 = clock()
        out["decode"].append(t1 - t0)
        out["lookup"].append(t2 - t1)
        out["render"].append(t3 - t2)
        out["encode"].append(t4 - t3)
    out["total"] = [sum(v) for v in zip(*out.values(), strict=True)]
    return out


async def _time_fast(
    store: PatientStore, requests: list[bytes], tid: str, ts: str, now: datetime
) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {k: [] for k in ("parse", "lookup", "render+encode")}
    clock = time.perf_counter_ns
    parse = RequestReader(max_inflated=MAX_INFLATED, cache_size=0).read  # uncached
    renderer = Renderer()
    for data in requests:
        t0 = clock()
        query = parse(data, ts, SOP)
        t1 = clock()
        assert isinstance(query, Query), query
        patients = await store.lookup_compact(query.patient_id, query.issuer)
        t2 = clock()
        renderer.identifier_bytes(patients[0], query.template, query.echo, ts, now)
        t3 = clock()
        out["parse"].append(t1 - t0)
        out["lookup"].append(t2 - t1)
        out["render+encode"].append(t3 - t2)
    out["total"] = [sum(v) for v in zip(*out.values(), strict=True)]
    service = QueryService(store, clock=lambda: now)
    peer = Peer("BENCH", "127.0.0.1", 0)
    out["find"] = []
    for data in requests:
        t0 = clock()
        await service.find(data, ts, SOP, peer)
        out["find"].append(clock() - t0)
    return out


Timer = Callable[[PatientStore, list[bytes], str, str, datetime], Awaitable[dict[str, list[int]]]]
PATHS: dict[str, Timer] = {"pydicom": _time_pydicom, "fast": _time_fast}


async def _run(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    store = await PatientStore.open(args.db, readers=args.readers, inline=not args.threads)
    ts = TransferSyntax.EXPLICIT_VR_LE if args.explicit else TransferSyntax.IMPLICIT_VR_LE
    now = datetime.now().astimezone()
    rows: list[tuple[str, str, str, float, float]] = []
    try:
        for tid in args.templates:
            ids = [f"DEMO{rng.randint(1, args.patients):06d}" for _ in range(args.n)]
            encoder = IdentifierTemplate(QueryModel.RPI, tid, explicit=args.explicit)
            requests = [encoder.encode(pid, None) for pid in ids]
            for name, timer in PATHS.items():
                if args.path not in (name, "both"):
                    continue
                await timer(store, requests, tid, ts, now)  # warm-up: page cache, caches
                for stage, samples in (await timer(store, requests, tid, ts, now)).items():
                    mean, p50 = _stats(samples)
                    rows.append((tid, name, stage, mean, p50))
    finally:
        await store.close()
    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, {args.db.name}, n={args.n} per template, "
        f"{'explicit' if args.explicit else 'implicit'} VR LE"
    )
    print(f"{'TID':<5} {'path':<8} {'stage':<14} {'mean µs':>9} {'p50 µs':>9}")
    for tid, name, stage, mean, p50 in rows:
        print(f"{tid:<5} {name:<8} {stage:<14} {mean:9.1f} {p50:9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, default=Path("/tmp/rpi/demo100k.sqlite3"))
    parser.add_argument("-n", type=int, default=2000, help="queries per template")
    parser.add_argument("--patients", type=int, default=100_000, help="demo population size")
    parser.add_argument("--templates", type=lambda s: s.split(","), default=list(TEMPLATES))
    parser.add_argument("--path", choices=("pydicom", "fast", "both"), default="both")
    parser.add_argument("--explicit", action="store_true", help="Explicit VR LE (default implicit)")
    parser.add_argument("--readers", type=int, default=4, help="connections with --threads")
    parser.add_argument(
        "--threads", action="store_true", help="look up through aiosqlite (default inline)"
    )
    parser.add_argument("--seed", type=int, default=1)
    asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    main()
