"""A run's result as JSON and as the final rich table."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from rpi_async import __version__
from rpi_async.bench.generator import BenchResult
from rpi_async.bench.mix import QueryPlan
from rpi_async.bench.stats import LATE_SHARE, LATE_START
from rpi_async.dicom.status import FindStatus
from rpi_async.errors import ConfigError


def result_dict(result: BenchResult, plan: QueryPlan) -> dict[str, Any]:
    """Everything a run measured, JSON-ready (latencies in ms, HDR histograms encoded)."""
    config = dataclasses.asdict(dataclasses.replace(result.config, tls=None))
    config["tls"] = result.config.tls is not None
    out: dict[str, Any] = {
        "tool": f"rpi-async bench {__version__}",
        "started_at": dt.datetime.fromtimestamp(result.started_at, dt.UTC).isoformat(),
        "mode": "open-loop" if result.config.rate is not None else "closed-loop",
        "config": config,
        "plan": plan.describe(),
        **result.stats.summary(result.window),
        "generator": {
            "cpu_seconds": result.generator_cpu.cpu,
            "wall_seconds": result.generator_cpu.wall,
            "cpu_percent_of_one_core": result.generator_cpu.percent,
            "nofile_limit": result.nofile_limit,
            "cancelled_at_deadline": result.forced_stop,
        },
        "server": result.server.summary() if result.server is not None else None,
        "hold": result.hold.summary() if result.config.hold else None,
    }
    return out


def write_json(data: dict[str, Any], path: Path) -> None:
    try:
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None


def _ms(value: float) -> str:
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def _status_name(code: str) -> str:
    number = int(code, 16)
    try:
        return f"{code} {FindStatus(number).name.lower().replace('_', ' ')}"
    except ValueError:
        return code


def schedule_warning(data: dict[str, Any]) -> str | None:
    """Open loop: a warning when the generator fell behind its schedule, else None."""
    schedule = data.get("schedule") or {}
    started = data["associations"]["started"]
    late = int(schedule.get("late_starts", 0))
    if data["mode"] != "open-loop" or not started or late <= started * LATE_SHARE:
        return None
    return (
        f"warning: the generator fell behind its schedule: {late:,} of {started:,} "
        f"associations started {LATE_START * 1000:g} ms or more late (at most "
        f"{schedule['max_lag_ms']:,.0f} ms): the rate measured is not the rate asked for; "
        "raise --concurrency or lower --rate"
    )


def render(data: dict[str, Any], console: Console) -> None:
    """The final summary: throughput, latency percentiles, statuses and errors."""
    assoc, queries = data["associations"], data["queries"]
    summary = Table(title=f"rpi-async bench: {data['mode']}", show_header=False)
    summary.add_column("what", style="bold")
    summary.add_column("value", justify="right")
    summary.add_row("measured window", f"{data['window_s']:.2f} s")
    summary.add_row("associations completed", f"{assoc['completed']:,}")
    summary.add_row("associations / s", f"{assoc['per_second']:,.1f}")
    summary.add_row("queries completed", f"{queries['completed']:,}")
    summary.add_row("queries / s", f"{queries['per_second']:,.1f}")
    summary.add_row("pending responses", f"{queries['pending_responses']:,}")
    gen = data["generator"]
    summary.add_row("generator CPU (% of one core)", f"{gen['cpu_percent_of_one_core']:.0f} %")
    server = data.get("server")
    if server:
        summary.add_row("server CPU (% of one core)", f"{server['cpu_percent']:.0f} %")
        summary.add_row("server peak RSS", f"{server['rss_peak_bytes'] / 2**20:,.1f} MiB")
    hold = data.get("hold")
    if hold:
        summary.add_row(
            "held idle associations", f"{hold['established']:,} / {hold['requested']:,}"
        )
        summary.add_row("held dropped by server", f"{hold['dropped_by_server']:,}")
        per = hold.get("server_rss_per_idle_association_bytes")
        if per is not None:
            summary.add_row("server RSS per idle association", f"{per / 1024:,.1f} KiB")
    console.print(summary)

    latency = Table(title="latency (ms)")
    latency.add_column("")
    for name in ("count", "p50", "p90", "p99", "p99.9", "max"):
        latency.add_column(name, justify="right")
    for name, figures in data["latency"].items():
        latency.add_row(
            name,
            f"{figures['count']:,}",
            *(_ms(figures[f"{p}_ms"]) for p in ("p50", "p90", "p99", "p99.9", "max")),
        )
    console.print(latency)

    outcome = Table(title="outcomes")
    outcome.add_column("final status / error")
    outcome.add_column("count", justify="right")
    for code, count in data["statuses"].items():
        outcome.add_row(_status_name(code), f"{count:,}")
    for kind, count in data["errors"].items():
        if count:
            outcome.add_row(f"[red]{kind}[/red]", f"{count:,}")
    console.print(outcome)
    for detail, count in list(data["error_details"].items())[:5]:
        console.print(f"  [red]{count:,} x[/red] {detail}")
