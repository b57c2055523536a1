"""k6-style thresholds and the bench's exit status."""

from __future__ import annotations

from typing import Any

import pytest

from rpi_async.bench import thresholds
from rpi_async.errors import ConfigError


def result(rate: float = 800.0, p99: float = 40.0, failed: int = 0) -> dict[str, Any]:
    latency = {"p50_ms": 5.0, "p90_ms": 20.0, "p99_ms": p99, "p99.9_ms": 90.0, "max_ms": 120.0}
    latency["mean_ms"] = 8.0
    return {
        "associations": {"per_second": rate, "failed": failed},
        "latency": {"association": latency, "query": {k: v / 10 for k, v in latency.items()}},
    }


@pytest.mark.parametrize(
    ("text", "metric", "op", "value"),
    [
        ("p99<500ms", "p99", "<", 500.0),
        ("p99.9 <= 2s", "p99.9", "<=", 2000.0),
        ("query_p50<20", "query_p50", "<", 20.0),
        ("rate>=800", "rate", ">=", 800.0),
        ("MAX>1", "max", ">", 1.0),
    ],
)
def test_parse(text: str, metric: str, op: str, value: float) -> None:
    parsed = thresholds.parse(text)
    assert (parsed.metric, parsed.op, parsed.value) == (metric, op, value)


@pytest.mark.parametrize("text", ["p99", "p98<5", "rate>=5ms", "p99=5", "<5", "p99<fast"])
def test_bad_thresholds_are_one_line_errors(text: str) -> None:
    with pytest.raises(ConfigError, match="threshold"):
        thresholds.parse(text)


def test_verdict() -> None:
    criteria = [thresholds.parse("p99<50ms"), thresholds.parse("rate>=700")]
    assert thresholds.verdict(result(), criteria, 0) == []
    missed = thresholds.verdict(result(rate=600.0, p99=60.0), criteria, 0)
    assert len(missed) == 2
    assert "p99<50ms missed: 60.00" in missed[0]
    assert thresholds.verdict(result(failed=3), [], 3) == []
    assert "3 failed associations" in thresholds.verdict(result(failed=3), [], 2)[0]
    assert thresholds.verdict(result(), [thresholds.parse("query_p99<5")], 0) == []
