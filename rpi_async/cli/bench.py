"""``rpi-async bench``: load-test an RPI Query SCP (or, with --model patient-root, a peer)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from rpi_async.bench import generator, report, thresholds
from rpi_async.bench.display import LiveDisplay
from rpi_async.bench.identifier import DEFAULT_TEMPLATE, PATIENT_ROOT_FIND, QueryModel
from rpi_async.bench.mix import Mix, QueryPlan, demo_hits, read_patients_file
from rpi_async.bench.pdu import encode_associate_rq
from rpi_async.cli import PlainHelpCommand, app, fail
from rpi_async.cli.scu import TlsCaOpt, TlsCertOpt, TlsKeyOpt, TlsOpt, tls_context
from rpi_async.dicom.uids import SOP_CLASS_BY_NAME
from rpi_async.errors import ConfigError, RpiError


def _loop_factory() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


@app.command(cls=PlainHelpCommand)
def bench(
    host: Annotated[str, typer.Argument(help="Server host name or address.")],
    port: Annotated[int, typer.Argument(help="Server port.")],
    aec: Annotated[str, typer.Option("--aec", help="Called AE title.")] = "RPI_SCP",
    aet: Annotated[str, typer.Option("--aet", help="Calling AE title.")] = "BENCH",
    concurrency: Annotated[
        int, typer.Option(help="Concurrent associations (cap in --rate mode).")
    ] = 16,
    duration: Annotated[
        float | None, typer.Option(help="Measured seconds (default 10 unless --count).")
    ] = None,
    count: Annotated[int | None, typer.Option(help="Measured associations to run.")] = None,
    rate: Annotated[
        float | None, typer.Option(help="Open loop: start R associations per second.")
    ] = None,
    queries_per_association: Annotated[int, typer.Option(help="C-FINDs per association.")] = 1,
    patients: Annotated[
        Path | None, typer.Option(help="File of patient IDs (ID or ID<TAB>issuer per line).")
    ] = None,
    demo_ids: Annotated[
        int | None, typer.Option(help="Hits are DEMO000001..DEMO<N> (default 1000).")
    ] = None,
    mix: Annotated[str, typer.Option(help="Proportions of hit, miss, dup.")] = (
        "hit=0.9,miss=0.05,dup=0.05"
    ),
    sop: Annotated[str, typer.Option(help="RPI SOP class: general, breast or cardiac.")] = (
        "general"
    ),
    template: Annotated[
        str | None, typer.Option(help="Template Identifier (default per SOP class).")
    ] = None,
    model: Annotated[
        QueryModel, typer.Option(help="rpi, or patient-root to load other archives.")
    ] = QueryModel.RPI,
    warmup: Annotated[float, typer.Option(help="Seconds of traffic not measured.")] = 1.0,
    timeout: Annotated[float, typer.Option(help="Per-association timeout, seconds.")] = 10.0,
    deadline: Annotated[
        float | None, typer.Option(help="Hard stop, seconds from the start of the load.")
    ] = None,
    hold: Annotated[
        int,
        typer.Option(
            help="Idle associations held open during the run (keep the run shorter than "
            "the server's idle timeout: they send nothing)."
        ),
    ] = 0,
    server_pid: Annotated[
        int | None, typer.Option(help="Server PID: report its CPU and memory.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the patient mix.")] = 1,
    pool: Annotated[
        int,
        typer.Option(help="Distinct hit IDs pre-encoded (default: all of them, up to 1,000,000)."),
    ] = 1_000_000,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Write the full result to this file.")
    ] = None,
    progress: Annotated[
        bool, typer.Option(help="Live progress (only when stdout is a terminal).")
    ] = True,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            help="Pass/fail criterion, repeatable: p99<500ms, p99.9<=2s, query_p50<20, "
            "rate>=800 (exit 1 when missed)."
        ),
    ] = None,
    max_errors: Annotated[
        int, typer.Option(min=0, help="Failed associations allowed before exit 1.")
    ] = 0,
    tls: TlsOpt = False,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> None:
    """Load-test a DICOM RPI Query SCP: associations/s, latency percentiles, errors.

    Exit status: 0 when the run passed, 1 when more associations failed than
    --max-errors or a --threshold was missed, 2 on usage or connection errors.
    """
    if duration is None and count is None:
        duration = 10.0
    try:
        criteria = [thresholds.parse(text) for text in threshold or []]
        config = generator.BenchConfig(
            host=host,
            port=port,
            called_ae=aec,
            calling_ae=aet,
            concurrency=concurrency,
            duration=duration,
            count=count,
            rate=rate,
            queries_per_association=queries_per_association,
            warmup=warmup,
            timeout=timeout,
            hold=hold,
            deadline=deadline,
            server_pid=server_pid,
            tls=tls_context(tls, tls_ca, tls_cert, tls_key),
        )
        plan = build_plan(model, sop, template, patients, demo_ids, mix, seed, pool)
        associate_rq = encode_associate_rq(aec, aet, plan.sop_class)
    except ValueError as exc:  # AE titles
        raise fail(str(exc)) from None
    except RpiError as exc:
        raise fail(str(exc)) from None
    console = Console()
    live = progress and sys.stdout.isatty()
    try:
        with asyncio.Runner(loop_factory=_loop_factory) as runner:
            runner.run(generator.probe(config, associate_rq))
            if live:
                total = config.warmup + config.duration if config.duration else None
                with LiveDisplay(console, total) as display:
                    result = runner.run(generator.run(config, plan, progress=display.update))
            else:
                result = runner.run(generator.run(config, plan))
    except RpiError as exc:
        raise fail(str(exc)) from None
    data = report.result_dict(result, plan)
    report.render(data, console)
    if json_path is not None:
        try:
            report.write_json(data, json_path)
        except RpiError as exc:
            raise fail(str(exc)) from None
    warning = report.schedule_warning(data)
    if warning is not None:
        typer.echo(warning, err=True)
    failures = thresholds.verdict(data, criteria, max_errors)
    for failure in failures:
        typer.echo(f"rpi-async bench: failed: {failure}", err=True)
    if failures:
        raise typer.Exit(1)


def build_plan(
    model: QueryModel,
    sop: str,
    template: str | None,
    patients: Path | None,
    demo_ids: int | None,
    mix: str,
    seed: int,
    pool: int,
) -> QueryPlan:
    """The query plan for the CLI options; raises ConfigError for bad values."""
    sop_class = SOP_CLASS_BY_NAME.get(sop.lower())
    if sop_class is None:
        raise ConfigError(f"--sop must be one of {', '.join(SOP_CLASS_BY_NAME)}, not {sop!r}")
    if pool < 1:
        raise ConfigError("--pool must be at least 1")
    if patients is not None and demo_ids is not None:
        raise ConfigError("give --patients or --demo-ids, not both")
    hits = (
        read_patients_file(patients)
        if patients is not None
        else demo_hits(1000 if demo_ids is None else demo_ids)
    )
    if model is QueryModel.PATIENT_ROOT:
        return QueryPlan(
            hits,
            Mix.parse(mix),
            sop_class=PATIENT_ROOT_FIND,
            model=model,
            template_id="",
            seed=seed,
            pool_size=pool,
        )
    template_id = template or DEFAULT_TEMPLATE[sop_class]
    if not template_id.isdigit() or len(template_id) > 16:
        raise ConfigError(f"--template must be a template number such as 9007, not {template!r}")
    return QueryPlan(
        hits,
        Mix.parse(mix),
        sop_class=sop_class.value,
        model=model,
        template_id=template_id,
        seed=seed,
        pool_size=pool,
    )
