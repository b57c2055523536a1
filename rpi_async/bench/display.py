"""The live progress line shown while a run is going (only on a terminal).

Refreshed from the generator's progress tick (twice a second) rather than rich's own
refresh thread, so the display never reads counters while the event loop updates them.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.text import Text

from rpi_async.bench.stats import RunStats


class LiveDisplay:
    """Use as a context manager; pass ``update`` as the generator's progress callback."""

    def __init__(self, console: Console, total: float | None) -> None:
        self.console = console
        self.total = total
        self._live = Live(console=console, auto_refresh=False, transient=True)
        self._last_time = 0.0
        self._last_done = 0

    def __enter__(self) -> LiveDisplay:
        self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._live.__exit__(exc_type, exc, tb)

    def update(self, phase: str, elapsed: float, stats: RunStats, in_flight: int) -> None:
        done = stats.completed
        span = elapsed - self._last_time
        rate = (done - self._last_done) / span if span > 0 else 0.0
        self._last_time, self._last_done = elapsed, done
        of = f"/{self.total:.0f}" if self.total else ""
        line = Text()
        line.append(f"{phase:<9} ", style="bold cyan")
        line.append(f"{elapsed:6.1f}{of} s  ")
        line.append(f"{rate:9,.0f} assoc/s  ")
        line.append(f"{done:,} done  {stats.queries:,} queries  {in_flight:,} in flight  ")
        line.append(f"p99 {stats.association.percentile_ms(99.0):,.1f} ms  ")
        errors = stats.error_count
        line.append(f"{errors:,} errors", style="bold red" if errors else "green")
        self._live.update(line, refresh=True)
