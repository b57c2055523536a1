"""PNG plots of a suite's runs: throughput and latency percentiles against concurrency."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

PERCENTILE_STYLES = (("p50_ms", "-", "p50"), ("p99_ms", "--", "p99"))
CEILING = "null"  # the null server: what the generator itself can drive


def _concurrency_axis(ax: Any, runs: list[dict[str, Any]]) -> None:
    levels = sorted({int(d["config"]["concurrency"]) for d in runs})
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(level) for level in levels])
    ax.set_xlabel("concurrent associations (closed loop)")


def _by_server(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for data in runs:
        grouped[data["server_name"]].append(data)
    for series in grouped.values():
        series.sort(key=lambda d: d["config"]["concurrency"])
    return dict(grouped)


def _levels(series: list[dict[str, Any]]) -> list[int]:
    return [int(d["config"]["concurrency"]) for d in series]


def plot_throughput(runs: list[dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, series in _by_server(runs).items():
        # No completed association: no point (a gap), rather than a drop to zero.
        rates = [d["associations"]["per_second"] or math.nan for d in series]
        if name == CEILING:
            label = f"{name} (generator ceiling)"
            ax.plot(_levels(series), rates, "--", color="grey", marker=".", label=label)
        else:
            ax.plot(_levels(series), rates, marker="o", label=name)
    _concurrency_axis(ax, runs)
    ax.set_yscale("log")
    ax.set_ylabel("associations / s completed without error (log)")
    ax.set_title("Throughput against concurrency (1 C-FIND per association)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency(runs: list[dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    everything = _by_server(runs)
    servers = {k: v for k, v in everything.items() if k != CEILING} or everything
    for index, (name, series) in enumerate(servers.items()):
        color = colors[index % len(colors)]
        for key, style, label in PERCENTILE_STYLES:
            latency = [d["latency"]["association"] for d in series]
            values = [lat[key] if lat["count"] else math.nan for lat in latency]
            ax.plot(
                _levels(series), values, style, marker="o", color=color, label=f"{name} {label}"
            )
    _concurrency_axis(ax, runs)
    ax.set_yscale("log")
    ax.set_ylabel("association latency, ms (connect to release, log)")
    ax.set_title("Latency percentiles against concurrency (solid p50, dashed p99)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_all(runs: list[dict[str, Any]], out: Path) -> list[Path]:
    return [
        plot_throughput(runs, out / "throughput.png"),
        plot_latency(runs, out / "latency.png"),
    ]
