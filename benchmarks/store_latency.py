"""Patient store latency: lookup, and lookup + SR rendering, against the population size.

    python -m benchmarks.store_latency --patients 1000 1000000 [--lookups 5000] [--seed 0]
    python -m benchmarks.store_latency --import-patients 100000 [--max-facts 20] --patients

For each population size, a demo database is generated once and cached under
``benchmarks/out/store/`` (the time it took is printed), then ``--lookups`` random
patients are looked up one after another through ``PatientStore.lookup`` (a read-only
aiosqlite pool), and again with the record rendered as the TID 9007 response identifier
(``rpi_async.sr.render.render_identifier``). Medians and 99th percentiles are printed and
written to ``benchmarks/out/store/latency.json``. With ``--import-patients N``, N demo
patients (at most ``--max-facts`` facts each) are exported to NDJSON once, and the time of
``rpi-async db import``'s library path (parse, validate, write in one transaction) is
measured on a fresh database. Delete ``benchmarks/out/store/`` after changing the demo
generator: cached files are keyed by size and seed only.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from rpi_async.store import bulk, demo, importer, schema
from rpi_async.store.document import record_to_json
from rpi_async.store.model import PatientRecord
from rpi_async.store.reader import PatientStore

OUT = Path(__file__).resolve().parent / "out" / "store"

Renderer = Callable[[PatientRecord], Dataset]


@dataclass(frozen=True, slots=True)
class Result:
    patients: int
    lookups: int
    lookup_median_us: float
    lookup_p99_us: float
    render_median_us: float | None
    render_p99_us: float | None
    build_seconds: float | None  # None when the database came from the cache


def _progress(label: str, total: int) -> Callable[[int], None]:
    started = time.perf_counter()
    step = max(total // 20, 1)

    def report(done: int) -> None:
        if done % step < 1000 or done == total:
            rate = done / max(time.perf_counter() - started, 1e-9)
            print(f"\r  {label}: {done:>10,}/{total:,} ({rate:,.0f}/s)", end="", file=sys.stderr)
            if done >= total:
                print(file=sys.stderr)

    return report


def _database(patients: int, seed: int) -> tuple[Path, float | None]:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"demo-{patients}-seed{seed}.sqlite3"
    if path.exists():
        return path, None
    partial = path.with_suffix(".partial")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
    started = time.perf_counter()
    demo.create_demo_database(
        partial, patients=patients, seed=seed, progress=_progress("generating", patients + 2)
    )
    seconds = time.perf_counter() - started
    partial.rename(path)
    return path, seconds


def _renderer() -> Renderer | None:
    """TID 9007 rendering, when the SR renderer is available."""
    try:
        from rpi_async.dicom.uids import SopClass
        from rpi_async.sr import registry
        from rpi_async.sr.render import MAPPING_RESOURCE, render_identifier
    except ImportError:  # pragma: no cover - the renderer ships with the package
        return None
    template = registry.resolve(SopClass.GENERAL_RPI_QUERY, MAPPING_RESOURCE, "9007")
    if template is None:
        return None
    moment = datetime.datetime(2025, 1, 1, 12, 0, 0)

    def render(record: PatientRecord) -> Dataset:
        request = Dataset()
        request.PatientName = ""
        request.PatientID = record.patient_id
        request.IssuerOfPatientID = record.issuer
        request.PatientBirthDate = ""
        request.PatientSex = ""
        item = Dataset()
        item.MappingResource = MAPPING_RESOURCE
        item.TemplateIdentifier = template.tid
        request.ContentTemplateSequence = [item]
        return render_identifier(record, template, request, observation_datetime=moment)

    return render


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return statistics.median(ordered) / 1000, p99 / 1000


def _ids(patients: int, lookups: int, seed: int) -> list[str]:
    rng = random.Random(seed + 1)
    return [demo.demo_patient_id(rng.randint(1, patients)) for _ in range(lookups)]


async def _measure(
    path: Path, ids: list[str], render: Renderer | None
) -> tuple[list[int], list[int]]:
    store = await PatientStore.open(path, readers=4)
    lookup_ns: list[int] = []
    render_ns: list[int] = []
    try:
        for pid in ids[: min(200, len(ids))]:  # warm up: page cache, statement cache
            await store.lookup(pid, "DEMO")
        for pid in ids:
            t0 = time.perf_counter_ns()
            [record] = await store.lookup(pid, "DEMO")
            lookup_ns.append(time.perf_counter_ns() - t0)
        if render is not None:
            for pid in ids:
                t0 = time.perf_counter_ns()
                [record] = await store.lookup(pid, "DEMO")
                render(record)
                render_ns.append(time.perf_counter_ns() - t0)
    finally:
        await store.close()
    return lookup_ns, render_ns


def run_latency(patients: int, lookups: int, seed: int) -> Result:
    path, build = _database(patients, seed)
    render = _renderer()
    if render is None:
        print("  (SR renderer not available: lookup only)", file=sys.stderr)
    lookup_ns, render_ns = asyncio.run(_measure(path, _ids(patients, lookups, seed), render))
    lookup_med, lookup_p99 = _percentiles(lookup_ns)
    render_med, render_p99 = _percentiles(render_ns) if render_ns else (None, None)
    return Result(patients, lookups, lookup_med, lookup_p99, render_med, render_p99, build)


def _export(path: Path, patients: int, seed: int, max_facts: int | None) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for generated in demo.generate(patients, seed):
            record = generated
            if max_facts is not None:
                record = dataclasses.replace(generated, facts=generated.facts[:max_facts])
            fh.write(json.dumps(record_to_json(record), separators=(",", ":")))
            fh.write("\n")


def run_import(patients: int, seed: int, max_facts: int | None) -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    trimmed = "" if max_facts is None else f"-max{max_facts}"
    source = OUT / f"import-{patients}-seed{seed}{trimmed}.ndjson"
    if not source.exists():
        print(f"  exporting {patients:,} demo patients to {source}", file=sys.stderr)
        _export(source, patients, seed, max_facts)
    db = OUT / "import-target.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    conn = schema.connect_writer(db, create=True)
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        with bulk.first_load(conn, new_database=True):  # as 'rpi-async db import --create'
            summary = importer.import_file(conn, source)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        conn.close()
    return {
        "patients": summary.patients,
        "facts": summary.facts,
        "file_bytes": source.stat().st_size,
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 2),
    }


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _table(results: list[Result]) -> Iterator[str]:
    yield "patients    lookup median   lookup p99   +render median   +render p99   build"
    for r in results:
        render = (
            f"{r.render_median_us:>11.0f} us {r.render_p99_us:>10.0f} us"
            if r.render_median_us is not None and r.render_p99_us is not None
            else f"{'n/a':>14} {'n/a':>13}"
        )
        build = "cached" if r.build_seconds is None else f"{r.build_seconds:.1f} s"
        yield (
            f"{r.patients:>9,} {r.lookup_median_us:>12.0f} us {r.lookup_p99_us:>9.0f} us "
            f"{render}   {build}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--patients", type=int, nargs="*", default=[1000, 1_000_000])
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--import-patients", type=int, default=0, metavar="N")
    parser.add_argument(
        "--max-facts", type=int, default=None, help="keep at most this many facts per patient"
    )
    args = parser.parse_args(argv)
    report: dict[str, Any] = {"machine": _machine()}
    if args.import_patients:
        result = run_import(args.import_patients, args.seed, args.max_facts)
        report["import"] = result
        print(
            f"import: {result['patients']:,} patients, {result['facts']:,} facts, "
            f"{result['file_bytes'] / 1e6:.0f} MB NDJSON: {result['wall_seconds']} s wall, "
            f"{result['cpu_seconds']} s CPU"
        )
    results = [run_latency(n, args.lookups, args.seed) for n in args.patients]
    if results:
        report["latency"] = [asdict(r) for r in results]
        for line in _table(results):
            print(line)
    print(f"machine: {report['machine']}")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "latency.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
