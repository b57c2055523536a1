"""PNG plots of a suite's runs: throughput and latency percentiles against concurrency."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

PERCENTILE_STYLES = (("p50_ms", "-", "p50"), ("p99_ms", "--", "p99"))


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
        rates = [d["associations"]["per_second"] for d in series]
        ax.plot(_levels(series), rates, marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent associations (closed loop)")
    ax.set_ylabel("associations / s (1 C-FIND each, completed without error)")
    ax.set_title("Throughput against concurrency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_latency(runs: list[dict[str, Any]], path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (name, series) in enumerate(_by_server(runs).items()):
        color = colors[index % len(colors)]
        for key, style, label in PERCENTILE_STYLES:
            values = [d["latency"]["association"][key] for d in series]
            ax.plot(
                _levels(series), values, style, marker="o", color=color, label=f"{name} {label}"
            )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("concurrent associations (closed loop)")
    ax.set_ylabel("association latency, ms (connect to release)")
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
