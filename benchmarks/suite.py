"""One command to benchmark rpi-async against the baselines and peers it replaces.

    python -m benchmarks.suite [--quick] [--servers a,b] [--concurrency 1,4,16]
                               [--duration S] [--patients N] [--out DIR]

Start every server of ``benchmarks.servers.launchers.SERVERS`` (or those named) on
127.0.0.1 with a free port, wait until each is ready, load it with the demo population and
check it with one association. Then, for each concurrency level, run the load generator
closed-loop against each server in turn (one C-FIND per association by default),
``--repeat`` times with the order reversed every other time; the table keeps the run of
median throughput. Interleaving matters on a shared virtual machine whose speed drifts by
a third over minutes: runs of one server far apart in time would compare the machine,
not the servers. Idle servers cost nothing meanwhile, and after each run the suite waits
(at most 15 s) until the server that ran is idle again, so that one still working off an
overload cannot slow the next. Every server is stopped at the end,
whatever happens. A server that cannot run here (not installed, or its command fails) is
skipped and the summary says why.

Bounds: every run lasts at most warm-up + duration + timeout + 2 s (the generator's hard
deadline). The full suite (8 servers x 6 levels x (2 s warm-up + 8 s), at most 17 s a
run, plus about a minute of set-up and loading) takes 10-12 minutes on 2 cores and at
most about 15, times ``--repeat``; ``--quick`` (levels 1, 16, 64; 1 s + 3 s each) about 2
minutes. Loading 100,000 patients into Orthanc over C-STORE takes about 5 minutes more;
dcmqrscp stores about 5 instances a second at that size, too slow to load.

Outputs in ``--out``: ``runs/SERVER-cCONCURRENCY-rN.json`` (the generator's full result),
``summary.md`` (server x concurrency table), ``throughput.png`` and ``latency.png``, and
``logs/SERVER.log`` (each server's own output).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.servers import population
from benchmarks.servers.launchers import (
    HOST,
    SERVERS,
    ServerProcess,
    ServerSpec,
    ServerUnavailable,
    Workspace,
)
from rpi_async.bench import generator, procmon, report
from rpi_async.bench.identifier import PATIENT_ROOT_FIND, QueryModel
from rpi_async.bench.mix import Mix, QueryPlan, demo_hits
from rpi_async.bench.pdu import encode_associate_rq
from rpi_async.dicom.uids import SopClass
from rpi_async.errors import RpiError

FULL_LEVELS = (1, 4, 16, 64, 256, 1024)
QUICK_LEVELS = (1, 16, 64)
MIX = "hit=0.9,miss=0.05,dup=0.05"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.suite", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--quick", action="store_true", help="levels 1,16,64; 3 s each")
    parser.add_argument("--servers", help=f"comma-separated subset of: {', '.join(SERVERS)}")
    parser.add_argument("--concurrency", help="comma-separated levels (default 1,4,...,1024)")
    parser.add_argument("--duration", type=float, help="measured seconds per run (8; quick 3)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per run (2; quick 1)")
    parser.add_argument("--timeout", type=float, help="per-association timeout (5; quick 3)")
    parser.add_argument("--queries-per-association", type=int, default=1)
    parser.add_argument("--patients", type=int, default=1000, help="demo patients (1000)")
    parser.add_argument(
        "--db",
        type=Path,
        help="use this existing demo database (rpi-async db demo) instead of building one;"
        " --patients must say how many demo patients it holds",
    )
    parser.add_argument(
        "--file-patients",
        type=int,
        help="patients given as DICOM files to the file-based servers (toy, Orthanc,"
        " dcmqrscp); default: all, at most 2000",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per server and level, interleaved; the table shows the median (1)",
    )
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args(argv)
    args.levels = _levels(args.concurrency, QUICK_LEVELS if args.quick else FULL_LEVELS, parser)
    args.duration = args.duration or (3.0 if args.quick else 8.0)
    args.warmup = args.warmup if args.warmup is not None else (1.0 if args.quick else 2.0)
    args.timeout = args.timeout or (3.0 if args.quick else 5.0)
    names = [n.strip() for n in args.servers.split(",")] if args.servers else list(SERVERS)
    unknown = [n for n in names if n not in SERVERS]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; known: {', '.join(SERVERS)}")
    if args.patients < 1:
        parser.error("--patients must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.names = names
    return args


def _levels(
    text: str | None, default: tuple[int, ...], parser: argparse.ArgumentParser
) -> list[int]:
    if not text:
        return list(default)
    try:
        levels = [int(part) for part in text.split(",")]
    except ValueError:
        parser.error(f"--concurrency: not a list of integers: {text!r}")
    if any(level < 1 for level in levels):
        parser.error("--concurrency levels must be at least 1")
    return levels


def plan_for(model: QueryModel, patients: int) -> QueryPlan:
    hits = demo_hits(patients)
    if model is QueryModel.PATIENT_ROOT:
        return QueryPlan(
            hits, Mix.parse(MIX), sop_class=PATIENT_ROOT_FIND, model=model, template_id=""
        )
    return QueryPlan(
        hits,
        Mix.parse(MIX),
        sop_class=SopClass.GENERAL_RPI_QUERY,
        model=model,
        template_id="9007",
    )


def prepare_workspace(
    root: Path, patients: int, file_patients: int, db: Path | None = None
) -> Workspace:
    """The SQLite population (built, or ``db`` reused) and the first N as DICOM files."""
    if db is None:
        records = population.demo_records(patients)
        db = population.build_database(root / "demo.sqlite3", records)
        file_records = records[:file_patients] + records[patients:]  # + the DEMO-DUP pair
    else:
        file_records = population.demo_records(file_patients)
    files = population.write_instances(root / "instances", file_records)
    return Workspace(root=root, db=db, files=files, patients=patients, file_patients=file_patients)


@dataclass
class Started:
    """A server that is up, loaded and answered the probe."""

    spec: ServerSpec
    process: ServerProcess
    plan: QueryPlan


def start_server(
    spec: ServerSpec,
    ws: Workspace,
    runner: asyncio.Runner,
    logs_dir: Path,
    stack: contextlib.ExitStack,
) -> Started:
    """Start, load and probe one server; it stays up until ``stack`` closes.

    Raises ServerUnavailable (or RuntimeError, OSError) to skip it, having stopped it.
    """
    plan = plan_for(spec.model, spec.population(ws))
    with contextlib.ExitStack() as own:
        process = own.enter_context(ServerProcess(spec, ws, logs_dir / f"{spec.name}.log"))
        probe_config = generator.BenchConfig(
            HOST, process.port, called_ae=spec.called_ae, timeout=10.0
        )
        rq = encode_associate_rq(spec.called_ae, "BENCH", plan.sop_class)
        try:
            runner.run(generator.probe(probe_config, rq))
        except RpiError as exc:
            raise ServerUnavailable(f"probe failed: {exc}") from None
        stack.enter_context(own.pop_all())
    return Started(spec, process, plan)


def run_level(
    started: Started, level: int, args: argparse.Namespace, runner: asyncio.Runner
) -> dict[str, Any]:
    """One closed-loop run of the generator against one server."""
    spec, server = started.spec, started.process
    config = generator.BenchConfig(
        HOST,
        server.port,
        called_ae=spec.called_ae,
        concurrency=level,
        duration=args.duration,
        warmup=args.warmup,
        timeout=args.timeout,
        queries_per_association=args.queries_per_association,
        server_pid=server.pid,
    )
    result = runner.run(generator.run(config, started.plan))
    data = report.result_dict(result, started.plan)
    data["server_name"] = spec.name
    data["server_note"] = spec.note
    return data


SETTLE_WINDOW = 0.25  # seconds of CPU measurement
SETTLE_BUSY = 0.05  # a server using more than 5 % of a core is still busy
SETTLE_LIMIT = 15.0  # seconds at most


def settle(pid: int) -> float:
    """Wait, at most SETTLE_LIMIT s, until the server that just ran is idle; return the
    seconds waited. An overloaded server may still be working off abandoned requests
    after its run, and must not steal the CPU from the next server's run."""
    waited = 0.0
    while waited < SETTLE_LIMIT:
        before = procmon.tree_cpu_seconds(pid)
        time.sleep(SETTLE_WINDOW)  # a measurement window, not a wait for an event
        waited += SETTLE_WINDOW
        if procmon.tree_cpu_seconds(pid) - before < SETTLE_BUSY * SETTLE_WINDOW:
            break
    return waited


def median_run(repeats: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (the lower one of an even count), carrying
    every repeat's rate in ``repeat_rates``."""
    ranked = sorted(repeats, key=lambda d: d["associations"]["per_second"])
    chosen = dict(ranked[(len(ranked) - 1) // 2])
    chosen["repeat_rates"] = [d["associations"]["per_second"] for d in repeats]
    return chosen


def one_line(data: dict[str, Any]) -> str:
    lat = data["latency"]["association"]
    server = data.get("server") or {}
    return (
        f"c={data['config']['concurrency']:<5} {data['associations']['per_second']:8.1f} assoc/s"
        f"  p50 {lat['p50_ms']:8.2f} ms  p99 {lat['p99_ms']:8.2f} ms"
        f"  errors {data['associations']['failed']:<6}"
        f"  gen CPU {data['generator']['cpu_percent_of_one_core']:4.0f}%"
        f"  server CPU {server.get('cpu_percent', 0.0):4.0f}%"
    )


def _errors(data: dict[str, Any]) -> str:
    errors = {k: v for k, v in data["errors"].items() if v}
    if not errors:
        return "0"
    parts = ", ".join(f"{k} {v}" for k, v in sorted(errors.items(), key=lambda kv: -kv[1]))
    return f"{sum(errors.values())} ({parts})"


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpu = model or platform.machine()
    return f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}"


def summary_markdown(
    runs: list[dict[str, Any]],
    skipped: dict[str, str],
    args: argparse.Namespace,
    command: str,
    started: dt.datetime,
    elapsed: float,
) -> str:
    repeats = args.repeat > 1
    lines = [
        "# Benchmark summary",
        "",
        f"- Command: `{command}`",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')}; suite took {elapsed / 60:.1f} min",
        f"- Machine: {machine()}; generator and server share it",
        f"- Each run: closed loop, {args.warmup:g} s warm-up (not counted) + "
        f"{args.duration:g} s measured, per-association timeout {args.timeout:g} s; each "
        f"association = connect, associate, {args.queries_per_association} C-FIND, release",
        f"- Patients: {args.patients} demo patients in SQLite (rpi-async, pynetdicom-sqlite),"
        f" {args.file_patients or min(args.patients, 2000)} as DICOM files (toy, Orthanc,"
        f" dcmqrscp), + DEMO-DUP (two issuers); hits drawn uniformly; mix {MIX}",
        "- Latency is per association (connect to release), in ms; assoc/s counts "
        "associations completed without error",
        f"- All servers are up at once; at each level they run in turn ({args.repeat} "
        "time(s), the order reversed every other time), so drift of the machine's speed "
        "hits them alike. With repeats, each row is the run of median throughput and "
        "'all runs' lists every rate",
        "",
        "| server | concurrency | assoc/s | p50 ms | p99 ms | p99.9 ms | errors "
        "| gen CPU % | server CPU % | server RSS MiB |" + (" all runs |" if repeats else ""),
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|" + ("---|" if repeats else ""),
    ]
    for data in runs:
        lat = data["latency"]["association"]
        server = data.get("server") or {}
        rss = server.get("rss_peak_bytes", 0) / 2**20
        rates = data.get("repeat_rates", [])
        lines.append(
            f"| {data['server_name']} | {data['config']['concurrency']} "
            f"| {data['associations']['per_second']:,.1f} | {lat['p50_ms']:,.2f} "
            f"| {lat['p99_ms']:,.2f} | {lat['p99.9_ms']:,.2f} | {_errors(data)} "
            f"| {data['generator']['cpu_percent_of_one_core']:.0f} "
            f"| {server.get('cpu_percent', 0.0):.0f} | {rss:,.0f} |"
            + (f" {', '.join(f'{r:,.0f}' for r in rates)} |" if repeats else "")
        )
    notes = {d["server_name"]: d["server_note"] for d in runs}
    if notes:
        lines += ["", "Servers:", ""]
        lines += [f"- **{name}**: {note}" for name, note in notes.items()]
    if skipped:
        lines += ["", "Skipped:", ""]
        lines += [f"- **{name}**: {reason}" for name, reason in skipped.items()]
    lines += [
        "",
        "![throughput](throughput.png)",
        "",
        "![latency](latency.png)",
        "",
    ]
    return "\n".join(lines)


def _loop_factory() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m benchmarks.suite " + shlex.join(sys.argv[1:] if argv is None else argv)
    out: Path = args.out
    runs_dir, logs_dir = out / "runs", out / "logs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    logs_dir.mkdir(parents=True, exist_ok=True)
    started = dt.datetime.now(dt.UTC)
    t0 = time.monotonic()
    per_run = args.warmup + args.duration
    print(
        f"servers: {', '.join(args.names)}; concurrency {args.levels}; "
        f"{per_run:g} s per run (at most {per_run + args.timeout + 2:g} s)",
        flush=True,
    )
    runs: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="rpi-bench-") as tmp:
        file_patients = args.file_patients or min(args.patients, 2000)
        print(
            f"demo population: {args.patients} patients in SQLite"
            f" ({args.db or 'built now'}), {file_patients} as DICOM files ...",
            flush=True,
        )
        ws = prepare_workspace(Path(tmp), args.patients, file_patients, args.db)
        with (
            asyncio.Runner(loop_factory=_loop_factory) as runner,
            contextlib.ExitStack() as stack,
        ):
            up: list[Started] = []
            for name in args.names:
                spec = SERVERS[name]
                reason = spec.unavailable(ws)
                if reason is not None:
                    print(f"{name}: skipped: {reason}", flush=True)
                    skipped[name] = reason
                    continue
                try:
                    up.append(start_server(spec, ws, runner, logs_dir, stack))
                    print(f"{name}: up on port {up[-1].process.port}", flush=True)
                except ServerUnavailable as exc:
                    print(f"{name}: skipped: {exc}", flush=True)
                    skipped[name] = str(exc)
                except (RuntimeError, OSError) as exc:
                    print(f"{name}: failed: {exc}", flush=True)
                    skipped[name] = f"failed: {exc}"
            measured: dict[tuple[str, int], list[dict[str, Any]]] = {}
            for level in args.levels:
                for turn in range(args.repeat):
                    # Alternate the order, so that no server always runs first or last.
                    for server in up if turn % 2 == 0 else reversed(up):
                        data = run_level(server, level, args, runner)
                        data["settled_after_s"] = settle(server.process.pid)
                        name = server.spec.name
                        path = runs_dir / f"{name}-c{level}-r{turn + 1}.json"
                        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
                        print(f"  {name:<22} {one_line(data)}", flush=True)
                        measured.setdefault((name, level), []).append(data)
            runs = [
                median_run(measured[(server.spec.name, level)])
                for server in up
                for level in args.levels
            ]
    elapsed = time.monotonic() - t0
    text = summary_markdown(runs, skipped, args, command, started, elapsed)
    (out / "summary.md").write_text(text, encoding="utf-8")
    if runs:
        try:
            from benchmarks import plots
        except ImportError:
            print("plots skipped: matplotlib missing (pip install -e '.[bench]')", flush=True)
        else:
            plots.plot_all(runs, out)
    print(f"done in {elapsed / 60:.1f} min: {out / 'summary.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
