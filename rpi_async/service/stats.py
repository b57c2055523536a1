"""Counters that both engines and the query service update; read by logs, tests, metrics."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    associations_accepted: int
    associations_active: int
    associations_aborted: int
    associations_rejected: dict[str, int]
    queries: dict[tuple[str, int], int]
    echoes: int


@dataclass
class ServerStats:
    """Thread-safe counters: pynetdicom updates them from its association threads."""

    associations_accepted: int = 0
    associations_rejected: Counter[str] = field(default_factory=Counter)
    associations_aborted: int = 0
    associations_active: int = 0
    queries: Counter[tuple[str, int]] = field(default_factory=Counter)  # (sop name, status)
    echoes: int = 0
    cancels: int = 0  # C-CANCEL requests received
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _changed: threading.Condition = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._changed = threading.Condition(self._lock)

    def cancel_received(self) -> None:
        with self._lock:
            self.cancels += 1
            self._changed.notify_all()

    def wait_for_cancels(self, count: int, timeout: float) -> bool:
        """Block until ``count`` C-CANCELs have been received; False on timeout."""
        with self._lock:
            return self._changed.wait_for(lambda: self.cancels >= count, timeout)

    def association_opened(self) -> None:
        with self._lock:
            self.associations_accepted += 1
            self.associations_active += 1

    def association_closed(self, *, aborted: bool) -> None:
        with self._lock:
            self.associations_active -= 1
            if aborted:
                self.associations_aborted += 1

    def association_rejected(self, reason: str) -> None:
        with self._lock:
            self.associations_rejected[reason] += 1

    def query_answered(self, sop: str, status: int) -> None:
        with self._lock:
            self.queries[(sop, status)] += 1

    def echo_answered(self) -> None:
        with self._lock:
            self.echoes += 1

    def total_queries(self) -> int:
        with self._lock:
            return sum(self.queries.values())

    def snapshot(self) -> StatsSnapshot:
        """A consistent copy of every counter (for metrics)."""
        with self._lock:
            return StatsSnapshot(
                self.associations_accepted,
                self.associations_active,
                self.associations_aborted,
                dict(self.associations_rejected),
                dict(self.queries),
                self.echoes,
            )
