"""What a run measured: HDR latency histograms, counters and a per-second time series.

Latencies are recorded in microseconds in HDR histograms (3 significant digits, up to one
hour), so percentiles up to p99.9 are exact to 0.1% whatever the number of samples and
recording costs the same at any rate. Three latencies are kept: the whole association
(from its intended start in open-loop mode, so a slow server cannot hide queueing delay:
no coordinated omission), the association set-up (connect + A-ASSOCIATE-RQ/AC) and each
C-FIND query (request written to final response read). Only associations that started
after the warm-up are recorded; all times come from the event loop's monotonic clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from rpi_async.bench.mix import QueryKind
from rpi_async.bench.session import ErrorKind

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 99.0, 99.9)
LATE_START = 0.010  # open loop: a start this late means the generator fell behind
LATE_SHARE = 0.01  # more late starts than this share of the measured ones: a warning
MAX_DETAILS = 20  # distinct error texts kept per run


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


class Latency:
    """An HDR histogram plus the exact maximum, in microseconds."""

    def __init__(self) -> None:
        self.histogram = new_histogram()
        self.max_us = 0

    def record(self, seconds: float) -> None:
        us = min(max(round(seconds * 1e6), LOWEST_US), HIGHEST_US)
        self.histogram.record_value(us)
        self.max_us = max(self.max_us, us)

    @property
    def count(self) -> int:
        return int(self.histogram.get_total_count())

    def percentile_ms(self, percentile: float) -> float:
        if not self.count:
            return 0.0
        # HDR reports a bucket's highest equivalent value: never above the exact maximum.
        value = min(int(self.histogram.get_value_at_percentile(percentile)), self.max_us)
        return value / 1000.0

    def summary(self) -> dict[str, Any]:
        """Percentiles and max in milliseconds, plus the encoded histogram for re-analysis."""
        out: dict[str, Any] = {"count": self.count}
        for p in PERCENTILES:
            out[f"p{p:g}_ms"] = self.percentile_ms(p)
        out["max_ms"] = self.max_us / 1000.0
        out["mean_ms"] = float(self.histogram.get_mean_value()) / 1000.0 if self.count else 0.0
        out["hdr"] = self.histogram.encode().decode("ascii") if self.count else ""
        return out


@dataclass(slots=True)
class Second:
    """What completed in one second of the measured window."""

    associations: int = 0
    queries: int = 0
    errors: int = 0


@dataclass
class RunStats:
    """Counters for the measured part of a run; ``origin`` is the measured window's start."""

    origin: float
    association: Latency = field(default_factory=Latency)
    setup: Latency = field(default_factory=Latency)
    query: Latency = field(default_factory=Latency)
    started: int = 0
    completed: int = 0
    queries: int = 0
    pending_responses: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    statuses_by_kind: dict[QueryKind, Counter[int]] = field(default_factory=dict)
    errors: Counter[ErrorKind] = field(default_factory=Counter)
    error_details: Counter[str] = field(default_factory=Counter)
    seconds: list[Second] = field(default_factory=list)
    last_event: float = 0.0
    late_starts: int = 0  # open loop: associations started LATE_START s or more after due
    max_lag: float = 0.0

    def schedule_lag(self, lag: float) -> None:
        """Open loop: an association started ``lag`` seconds after it was due."""
        if lag >= LATE_START:
            self.late_starts += 1
        self.max_lag = max(self.max_lag, lag)

    def _second(self, now: float) -> Second:
        index = max(int(now - self.origin), 0)
        seconds = self.seconds
        while len(seconds) <= index:
            seconds.append(Second())
        self.last_event = max(self.last_event, now)
        return seconds[index]

    def association_done(self, now: float, elapsed: float) -> None:
        self.completed += 1
        self.association.record(elapsed)
        self._second(now).associations += 1

    def query_done(
        self, now: float, elapsed: float, kind: QueryKind, status: int, pendings: int
    ) -> None:
        self.queries += 1
        self.pending_responses += pendings
        self.statuses[status] += 1
        by_kind = self.statuses_by_kind.get(kind)
        if by_kind is None:
            by_kind = self.statuses_by_kind[kind] = Counter()
        by_kind[status] += 1
        self.query.record(elapsed)
        self._second(now).queries += 1

    def failed(self, now: float, kind: ErrorKind, detail: str) -> None:
        self.errors[kind] += 1
        key = f"{kind.value}: {detail}"
        if key in self.error_details or len(self.error_details) < MAX_DETAILS:
            self.error_details[key] += 1
        self._second(now).errors += 1

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def summary(self, window: float) -> dict[str, Any]:
        window = max(window, 1e-9)
        return {
            "window_s": window,
            "associations": {
                "started": self.started,
                "completed": self.completed,
                "failed": self.error_count,
                "per_second": self.completed / window,
            },
            "queries": {
                "completed": self.queries,
                "per_second": self.queries / window,
                "pending_responses": self.pending_responses,
            },
            "latency": {
                "association": self.association.summary(),
                "setup": self.setup.summary(),
                "query": self.query.summary(),
            },
            "statuses": {f"0x{s:04X}": n for s, n in sorted(self.statuses.items())},
            "statuses_by_kind": {
                kind.value: {f"0x{s:04X}": n for s, n in sorted(counts.items())}
                for kind, counts in self.statuses_by_kind.items()
            },
            "errors": {kind.value: self.errors.get(kind, 0) for kind in ErrorKind},
            "schedule": {"late_starts": self.late_starts, "max_lag_ms": self.max_lag * 1000.0},
            "error_details": dict(self.error_details.most_common()),
            "per_second": [
                {"t": i, "associations": s.associations, "queries": s.queries, "errors": s.errors}
                for i, s in enumerate(self.seconds)
            ],
        }
