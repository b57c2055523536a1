"""Load shedding: a bound on queries in flight, beyond which the answer is A700 at once.

Theory of operation. Under overload a queue without bound only turns every answer late:
clients time out, retry, and the work done for them is wasted. ``InFlightLimiter``
counts the queries being served; ``try_enter`` refuses (and counts the refusal) when
``limit`` are already in flight, and the QueryService answers such a query A700 "out of
resources" (PS3.4 Q.2.1.1.4) straight away, so the peer can retry elsewhere or later.
A limit of 0 admits everything and still counts in-flight queries for the metrics.

Both counters are plain ints changed under a lock: the pynetdicom engine's threads read
them for metrics, and the QueryService runs on the event loop.
"""

from __future__ import annotations

import threading


class InFlightLimiter:
    """``try_enter() -> bool`` before serving a query, ``leave()`` once it is answered."""

    def __init__(self, limit: int = 0) -> None:
        if limit < 0:
            raise ValueError("limit must be 0 (no limit) or more")
        self.limit = limit
        self.in_flight = 0
        self.shed = 0
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        """Take a slot; False (and one more shed query) when all ``limit`` are taken."""
        with self._lock:
            if self.limit and self.in_flight >= self.limit:
                self.shed += 1
                return False
            self.in_flight += 1
            return True

    def leave(self) -> None:
        """Give back the slot of a query that ``try_enter`` admitted."""
        with self._lock:
            self.in_flight -= 1
