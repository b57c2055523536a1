"""Pass/fail criteria for a load run, in the style of k6's thresholds.

A threshold is ``METRIC OP VALUE``: ``p99<500ms``, ``p99.9<=2s``, ``query_p50<20``
(milliseconds when no unit is given), ``rate>=800`` (associations per second), with
``<``, ``<=``, ``>`` or ``>=``. Latency metrics are the association's (``p50``, ``p90``,
``p99``, ``p99.9``, ``max``, ``mean``) or, prefixed ``query_``, the C-FIND's. Timed-out
associations count in the association figures as the time they were given (see the
generator). ``rpi-async bench`` exits 1 when a threshold is missed or the errors exceed
``--max-errors``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rpi_async.errors import ConfigError

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "<": operator.lt,
    ">": operator.gt,
}
_LATENCY = {"p50", "p90", "p99", "p99.9", "max", "mean"}
_FORM = re.compile(r"^\s*([a-z_.0-9]+)\s*(<=|>=|<|>)\s*([0-9.]+)\s*(ms|s)?\s*$")


@dataclass(frozen=True, slots=True)
class Threshold:
    text: str
    metric: str
    op: str
    value: float  # milliseconds for latencies, associations/s for the rate

    def actual(self, data: dict[str, Any]) -> float:
        """This threshold's metric in a ``report.result_dict``."""
        if self.metric == "rate":
            return float(data["associations"]["per_second"])
        kind, _, name = self.metric.rpartition("_")
        latency = data["latency"]["query" if kind == "query" else "association"]
        return float(latency[f"{name}_ms"])

    def met(self, data: dict[str, Any]) -> bool:
        return _OPS[self.op](self.actual(data), self.value)


def parse(text: str) -> Threshold:
    """One threshold; ConfigError with a one-line message when it is not one."""
    match = _FORM.match(text.lower())
    if match is None:
        raise ConfigError(f"threshold {text!r}: write METRIC OP VALUE, e.g. p99<500ms or rate>=800")
    metric, op, number, unit = match.groups()
    name = metric.removeprefix("query_")
    if metric != "rate" and name not in _LATENCY:
        known = ", ".join(sorted(_LATENCY))
        raise ConfigError(f"threshold {text!r}: unknown metric {metric!r} (rate, {known}, query_*)")
    if metric == "rate" and unit is not None:
        raise ConfigError(f"threshold {text!r}: rate is in associations per second, no unit")
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"threshold {text!r}: {number!r} is not a number") from None
    if unit == "s":
        value *= 1000.0
    return Threshold(text.strip(), metric, op, value)


def verdict(data: dict[str, Any], thresholds: list[Threshold], max_errors: int) -> list[str]:
    """What failed, one line each (empty: the run passed)."""
    failures = []
    errors = int(data["associations"]["failed"])
    if errors > max_errors:
        failures.append(f"{errors} failed associations, more than --max-errors {max_errors}")
    for threshold in thresholds:
        if not threshold.met(data):
            actual = threshold.actual(data)
            failures.append(f"threshold {threshold.text} missed: {actual:,.2f}")
    return failures
