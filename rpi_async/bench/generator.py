"""The load generator: closed-loop and open-loop association traffic, bounded in time.

Theory of operation: every association is one task running ``connect → A-ASSOCIATE →
K C-FINDs → A-RELEASE`` (PS3.8 §7.1, §7.2; PS3.7 §9.1.2) with the pre-encoded PDUs of a
``QueryPlan``, inside a per-association timeout.

- Closed loop: ``concurrency`` workers, each starting its next association when the last
  ended. Latency runs from the actual start.
- Open loop (``rate``): associations are due at ``t0 + i / rate`` whatever happens to
  earlier ones (wrk2 style); an event-loop timer starts every association that is due, a
  semaphore caps how many run at once, and latency runs from the *intended* start, so
  time spent waiting for a free slot counts against the server (no coordinated omission).

The run is warm-up, then the measured window, ended by ``duration`` or ``count``; after
that no association starts, the ones in flight get until the hard deadline, and whatever
is still running then is cancelled and counted as timed out. Only associations that began
after the warm-up are recorded. ``hold`` idle associations are opened before and kept
open during the measured window, to show what idle clients cost the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rpi_async.bench import pdu
from rpi_async.bench.mix import QueryPlan
from rpi_async.bench.procmon import CpuClock, ServerMonitor, raise_nofile_limit
from rpi_async.bench.session import AssociationFailed, ErrorKind, Session
from rpi_async.bench.stats import RunStats
from rpi_async.errors import ConfigError, RpiError

PROGRESS_INTERVAL = 0.5
# Latency clock. Not loop.time(): uvloop's is libuv's cached time, in whole milliseconds.
clock = time.perf_counter
COUNT_MODE_DEADLINE = 300.0  # hard bound of a --count run unless --deadline says otherwise
DRAIN_GRACE = 2.0
HOLD_OPEN_PARALLELISM = 64


class TargetUnusable(RpiError):
    """The probe association failed: the server cannot be benchmarked as given."""


@dataclass(frozen=True, slots=True)
class BenchConfig:
    host: str
    port: int
    called_ae: str = "RPI_SCP"
    calling_ae: str = "BENCH"
    concurrency: int = 16
    duration: float | None = 10.0
    count: int | None = None
    rate: float | None = None
    queries_per_association: int = 1
    warmup: float = 1.0
    timeout: float = 10.0
    hold: int = 0
    deadline: float | None = None
    server_pid: int | None = None
    tls: ssl.SSLContext | None = None  # DICOM over TLS (``ops.tls.client_context``)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port {self.port} is not between 1 and 65535")
        if self.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        if (self.duration is None) == (self.count is None):
            raise ConfigError("give exactly one of --duration and --count")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError("--duration must be positive")
        if self.count is not None and self.count < 1:
            raise ConfigError("--count must be at least 1")
        if self.rate is not None and not self.rate > 0:
            raise ConfigError("--rate must be positive")
        if self.queries_per_association < 0:
            raise ConfigError("--queries-per-association must be >= 0")
        if not self.warmup >= 0:
            raise ConfigError("--warmup must be >= 0")
        if not self.timeout > 0:
            raise ConfigError("--timeout must be positive")
        if self.hold < 0:
            raise ConfigError("--hold must be >= 0")
        if self.deadline is not None and not self.deadline > 0:
            raise ConfigError("--deadline must be positive")

    @property
    def hard_deadline(self) -> float:
        """Seconds from the start of the load (after holds open) to the forced stop."""
        if self.deadline is not None:
            return self.deadline
        if self.duration is not None:
            return self.warmup + self.duration + self.timeout + DRAIN_GRACE
        return self.warmup + COUNT_MODE_DEADLINE


@dataclass
class HoldStats:
    requested: int = 0
    established: int = 0
    dropped: int = 0
    released: int = 0
    failures: Counter[str] = field(default_factory=Counter)
    rss_before: int | None = None
    rss_after: int | None = None

    def summary(self) -> dict[str, Any]:
        per_assoc = None
        if self.rss_before is not None and self.rss_after is not None and self.established:
            per_assoc = (self.rss_after - self.rss_before) / self.established
        return {
            "requested": self.requested,
            "established": self.established,
            "dropped_by_server": self.dropped,
            "released": self.released,
            "failures": dict(self.failures),
            "server_rss_before_bytes": self.rss_before,
            "server_rss_after_bytes": self.rss_after,
            "server_rss_per_idle_association_bytes": per_assoc,
        }


@dataclass
class BenchResult:
    config: BenchConfig
    stats: RunStats
    window: float
    generator_cpu: CpuClock
    hold: HoldStats
    server: ServerMonitor | None
    nofile_limit: int
    started_at: float
    forced_stop: int = 0  # associations cancelled at the hard deadline


Progress = Callable[[str, float, RunStats, int], None]


async def probe(config: BenchConfig, associate_rq: bytes) -> None:
    """One association without queries; raises TargetUnusable with a one-line reason."""
    where = f"{config.host}:{config.port}"
    session: Session | None = None
    try:
        async with asyncio.timeout(config.timeout):
            session = await Session.open(config.host, config.port, associate_rq, config.tls)
            await session.release()
    except TimeoutError:
        raise TargetUnusable(f"{where} did not answer within {config.timeout:g} s") from None
    except AssociationFailed as exc:
        if exc.kind is ErrorKind.REJECTED:
            raise TargetUnusable(f"association rejected by {where}: {exc.detail}") from None
        if exc.kind in (ErrorKind.REFUSED, ErrorKind.CONNECT_FAILED):
            raise TargetUnusable(f"cannot connect to {where}: {exc.detail}") from None
        if exc.kind is ErrorKind.TLS_FAILED:
            raise TargetUnusable(f"TLS with {where} failed: {exc.detail}") from None
        hint = " (over TLS: the server may have refused our certificate)" if config.tls else ""
        raise TargetUnusable(f"{where} failed the probe association: {exc}{hint}") from None
    finally:
        if session is not None:
            session.drop()


class _Load:
    """State of one run; see the module docstring."""

    def __init__(
        self, config: BenchConfig, plan: QueryPlan, associate_rq: bytes, origin: float
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.config = config
        self.plan = plan
        self.associate_rq = associate_rq
        self.warm_end = origin + config.warmup
        self.stats = RunStats(origin=self.warm_end)
        self.launched = 0
        self.in_flight = 0
        self.stopped_at: float | None = None
        self.launch_done = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()
        self.forced = 0
        self.cap = asyncio.Semaphore(config.concurrency)
        self.t0 = origin
        self.index = 0

    def stop_launching(self) -> None:
        if self.stopped_at is None:
            self.stopped_at = clock()
            self.launch_done.set()

    def admit(self, start: float) -> bool | None:
        """Whether an association starting at ``start`` is measured; None: stop launching."""
        if self.stopped_at is not None:
            return None
        measured = start >= self.warm_end
        if measured:
            count = self.config.count
            if count is not None and self.launched >= count:
                self.stop_launching()
                return None
            self.launched += 1
        return measured

    async def association(self, start: float, measured: bool) -> None:
        config, plan = self.config, self.plan
        stats = self.stats if measured else None
        if stats is not None:
            stats.started += 1
        session: Session | None = None
        self.in_flight += 1
        try:
            async with asyncio.timeout(config.timeout):
                began = clock()
                session = await Session.open(
                    config.host, config.port, self.associate_rq, config.tls
                )
                if stats is not None:
                    stats.setup.record(clock() - began)
                pdus = plan.pdus(session.explicit)
                for _ in range(config.queries_per_association):
                    index = plan.next_index()
                    sent = clock()
                    status, pendings = await session.find(pdus[index])
                    if stats is not None:
                        now = clock()
                        stats.query_done(now, now - sent, plan.keys[index].kind, status, pendings)
                await session.release()
            if stats is not None:
                now = clock()
                stats.association_done(now, now - start)
        except AssociationFailed as exc:
            if stats is not None:
                stats.failed(clock(), exc.kind, exc.detail)
        except TimeoutError:
            if stats is not None:
                detail = f"association not finished within {config.timeout:g} s"
                now = clock()
                stats.failed(now, ErrorKind.TIMED_OUT, detail)
                stats.association.record(now - start)  # in the latency figures, as it waited
        except asyncio.CancelledError:
            self.forced += 1
            if stats is not None:
                now = clock()
                stats.failed(now, ErrorKind.TIMED_OUT, "still running at the deadline")
                stats.association.record(now - start)
            raise
        finally:
            self.in_flight -= 1
            if session is not None:
                session.drop()

    # closed loop ------------------------------------------------------------------

    async def worker(self) -> None:
        while True:
            start = clock()
            measured = self.admit(start)
            if measured is None:
                return
            await self.association(start, measured)

    # open loop --------------------------------------------------------------------

    def fire(self) -> None:
        """Start every open-loop association that is due, then re-arm for the next one."""
        now = clock()
        rate = self.config.rate or 1.0
        while True:
            due = self.t0 + self.index / rate
            if due > now:
                break
            measured = self.admit(due)
            if measured is None:
                return
            task = self.loop.create_task(self.capped(due, measured))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            self.index += 1
        self.loop.call_later(due - now, self.fire)

    async def capped(self, due: float, measured: bool) -> None:
        async with self.cap:
            if measured:
                self.stats.schedule_lag(clock() - due)
            await self.association(due, measured)


async def _open_holds(config: BenchConfig, associate_rq: bytes, hold: HoldStats) -> list[Session]:
    limit = asyncio.Semaphore(HOLD_OPEN_PARALLELISM)

    async def one() -> Session | None:
        async with limit:
            try:
                async with asyncio.timeout(config.timeout):
                    return await Session.open(config.host, config.port, associate_rq, config.tls)
            except AssociationFailed as exc:
                hold.failures[exc.kind.value] += 1
            except TimeoutError:
                hold.failures[ErrorKind.TIMED_OUT.value] += 1
            return None

    hold.requested = config.hold
    opened = await asyncio.gather(*(one() for _ in range(config.hold)))
    sessions = [s for s in opened if s is not None]
    hold.established = len(sessions)
    return sessions


async def _watch_hold(session: Session, hold: HoldStats) -> None:
    """Resolves when the server sends anything or drops the held association."""
    with contextlib.suppress(AssociationFailed):
        await session.wait_for_peer()
    hold.dropped += 1
    session.drop()


async def _release_holds(sessions: list[Session], limit: float, hold: HoldStats) -> None:
    async def one(session: Session) -> None:
        if session.transport.is_closing():
            return
        try:
            async with asyncio.timeout(limit):
                await session.release()
            hold.released += 1
        except (AssociationFailed, TimeoutError):
            session.drop()

    await asyncio.gather(*(one(s) for s in sessions))


async def run(
    config: BenchConfig, plan: QueryPlan, *, progress: Progress | None = None
) -> BenchResult:
    """Run the load described by ``config``; always returns by the hard deadline."""
    loop = asyncio.get_running_loop()
    nofile = raise_nofile_limit()
    associate_rq = pdu.encode_associate_rq(config.called_ae, config.calling_ae, plan.sop_class)
    monitor = ServerMonitor(config.server_pid) if config.server_pid is not None else None
    started_at = time.time()
    if monitor is not None:
        monitor.start()
    hold = HoldStats()
    held: list[Session] = []
    watchers: list[asyncio.Task[None]] = []
    if config.hold:
        if monitor is not None:
            hold.rss_before = monitor.rss()
        held = await _open_holds(config, associate_rq, hold)
        if monitor is not None:
            hold.rss_after = monitor.rss()
        watchers = [loop.create_task(_watch_hold(s, hold)) for s in held]

    origin = clock()
    load = _Load(config, plan, associate_rq, origin)
    cpu = CpuClock()
    timers: list[asyncio.TimerHandle] = []

    def window_start() -> None:
        cpu.start()
        if monitor is not None:
            monitor.window_start()

    def tick() -> None:
        now = clock()
        phase = "warm-up" if now < load.warm_end else "measuring"
        if load.stopped_at is not None:
            phase = "draining"
        assert progress is not None
        progress(phase, now - origin, load.stats, load.in_flight)
        timers.append(loop.call_later(PROGRESS_INTERVAL, tick))

    timers.append(loop.call_later(config.warmup, window_start))
    if config.duration is not None:
        stop_after = config.warmup + config.duration
        timers.append(loop.call_later(stop_after, load.stop_launching))
    if progress is not None:
        timers.append(loop.call_later(PROGRESS_INTERVAL, tick))
    hard_end = origin + config.hard_deadline
    try:
        if config.rate is None:
            for _ in range(config.concurrency):
                task = loop.create_task(load.worker())
                load.tasks.add(task)
                task.add_done_callback(load.tasks.discard)
        else:
            load.fire()
        try:
            async with asyncio.timeout(config.hard_deadline):
                await load.launch_done.wait()
        except TimeoutError:
            load.stop_launching()
        remaining = list(load.tasks)
        if remaining:
            _, pending = await asyncio.wait(remaining, timeout=max(hard_end - clock(), 0))
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for task in remaining:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
    finally:
        for timer in timers:
            timer.cancel()
        if clock() < load.warm_end:
            window_start()
        cpu.stop()
        if monitor is not None:
            monitor.window_end()
            monitor.stop()
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        await _release_holds(held, min(config.timeout, 5.0), hold)
    window = max(load.stats.last_event, load.stopped_at or 0.0) - load.warm_end
    return BenchResult(
        config=config,
        stats=load.stats,
        window=max(window, 1e-9),
        generator_cpu=cpu,
        hold=hold,
        server=monitor,
        nofile_limit=nofile,
        started_at=started_at,
        forced_stop=load.forced,
    )
