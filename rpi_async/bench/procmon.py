"""CPU and memory of the generator itself and of the server under test.

The generator's CPU is its own process time over the run, as a percentage of one core: a
reader can see at once whether the generator, and not the server, was the limit. The
server's CPU (its process plus children, e.g. worker processes) is the difference of its
CPU times between the start and the end of the measured window; its resident memory is
sampled on an event-loop timer (a sampling period, not a wait) to give the peak.
"""

from __future__ import annotations

import asyncio
import resource
import time
from dataclasses import dataclass
from typing import Any

import psutil

from rpi_async.errors import ConfigError

SAMPLE_INTERVAL = 0.5


def raise_nofile_limit() -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


@dataclass(slots=True)
class CpuClock:
    """Process CPU time against wall time between ``start`` and ``stop``."""

    cpu0: float = 0.0
    wall0: float = 0.0
    cpu: float = 0.0
    wall: float = 0.0

    def start(self) -> None:
        self.cpu0, self.wall0 = time.process_time(), time.monotonic()

    def stop(self) -> None:
        self.cpu = time.process_time() - self.cpu0
        self.wall = time.monotonic() - self.wall0

    @property
    def percent(self) -> float:
        return 100.0 * self.cpu / self.wall if self.wall > 0 else 0.0


def _tree(process: psutil.Process) -> list[psutil.Process]:
    try:
        return [process, *process.children(recursive=True)]
    except psutil.Error:
        return [process]


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        # children_*: processes it has reaped (e.g. dcmqrscp's per-association forks).
        total += times.user + times.system + times.children_user + times.children_system
    return total


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its children (0 if it is gone)."""
    try:
        return _cpu_seconds(_tree(psutil.Process(pid)))
    except psutil.Error:
        return 0.0


def _rss(processes: list[psutil.Process]) -> int:
    total = 0
    for proc in processes:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


class ServerMonitor:
    """Samples a server process tree's RSS; measures its CPU over the measured window."""

    def __init__(self, pid: int) -> None:
        try:
            self.process = psutil.Process(pid)
        except psutil.Error:
            raise ConfigError(f"--server-pid {pid}: no such process") from None
        self.pid = pid
        self.samples: list[tuple[float, int]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._origin = time.monotonic()
        self._window: tuple[float, float] | None = None
        self._cpu0 = 0.0
        self._wall0 = 0.0
        self.rss_peak = 0

    def rss(self) -> int:
        return _rss(_tree(self.process))

    def start(self) -> None:
        self._origin = time.monotonic()
        self._sample()

    def _sample(self) -> None:
        rss = self.rss()
        self.rss_peak = max(self.rss_peak, rss)
        self.samples.append((time.monotonic() - self._origin, rss))
        self._timer = asyncio.get_running_loop().call_later(SAMPLE_INTERVAL, self._sample)

    def window_start(self) -> None:
        self._cpu0 = _cpu_seconds(_tree(self.process))
        self._wall0 = time.monotonic()

    def window_end(self) -> None:
        cpu = _cpu_seconds(_tree(self.process)) - self._cpu0
        self._window = (cpu, time.monotonic() - self._wall0)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def summary(self) -> dict[str, Any]:
        cpu, wall = self._window or (0.0, 0.0)
        return {
            "pid": self.pid,
            "cpu_seconds": cpu,
            "cpu_percent": 100.0 * cpu / wall if wall > 0 else 0.0,
            "rss_peak_bytes": self.rss_peak,
            "rss_samples": [{"t": round(t, 3), "rss_bytes": r} for t, r in self.samples],
        }
