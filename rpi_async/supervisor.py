"""``--workers N``: N native-engine processes sharing one port, watched by a parent.

Theory of operation. The parent resolves the port (binding port 0 once if asked for
any free port), then starts N copies of ``rpi-async serve`` as child processes with
the effective settings passed in ``RPI_ASYNC_*`` variables, ``workers=1`` and
``reuse_port=true``: each child has its own event loop and database connections, and
the kernel spreads new connections across them (SO_REUSEPORT). A child reports that
it listens by writing one line on its stdout (``ops.workers.ready_line``, with the
loopback port of its own ``/metrics``), and one line after each reload.

Outside, the group is one service (``ops.workers``): the parent serves the configured
metrics port, with every worker's metrics labelled ``worker="<i>"`` and one ``/readyz``
that is ready only when every worker is; the parent alone speaks to systemd
(``ops.notify``: READY once all workers listen, RELOADING/READY around SIGHUP once
every worker has reopened the database, STOPPING, the watchdog).

A child that dies is logged and started again; a start that fails is logged and
retried after a back-off (1 s, doubling, at most ``MAX_BACKOFF``). More than
``MAX_RESTARTS`` deaths or failed starts within ``RESTART_WINDOW`` seconds stop the
whole server with exit status 1 (systemd's ``Restart=on-failure`` takes over).
SIGINT/SIGTERM are forwarded to every child, which shuts down gracefully; the parent
exits 0 once all have.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from typing import Any

from rpi_async.config import Settings
from rpi_async.config.settings import to_environment
from rpi_async.errors import RpiError
from rpi_async.ops import workers
from rpi_async.ops.http import OpsHttpServer
from rpi_async.ops.metrics import CONTENT_TYPE
from rpi_async.ops.notify import NOTIFY_ENV, Notifier

log = logging.getLogger("rpi_async.server")

MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
START_TIMEOUT = 60.0
MAX_BACKOFF = 30.0
RELOAD_TIMEOUT = 60.0


class WorkerFailed(RpiError):
    """A worker could not start, or kept dying."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        port = settings.port or _free_port(settings.host)
        self.settings = settings.replace(port=port)
        child = self.settings.replace(workers=1, reuse_port=True)
        if settings.metrics_port is not None:  # each worker: a loopback port of its own
            child = child.replace(metrics_host="127.0.0.1", metrics_port=0)
        self.child_settings = child
        self._stopping = asyncio.Event()
        self._failed = False
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._metrics_ports: dict[int, int | None] = {}
        self._restarts: dict[int, int] = dict.fromkeys(range(settings.workers), 0)
        self._reloads: dict[int, asyncio.Queue[bool]] = {
            i: asyncio.Queue() for i in range(settings.workers)
        }
        self._deaths: list[float] = []
        self._http: OpsHttpServer | None = None
        self._notify = Notifier.from_environ()
        self._tasks: set[asyncio.Task[None]] = set()

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("RPI_ASYNC_") and k not in NOTIFY_ENV
        }
        env.update(to_environment(self.child_settings))
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rpi_async",
            "serve",
            "--worker",
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        ready, metrics_port = workers.parse_ready_line(line)
        if not ready:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise WorkerFailed(f"worker {index} failed to start (exit status {proc.returncode})")
        self._procs[index] = proc
        self._metrics_ports[index] = metrics_port
        self._start_task(self._read_lines(index, proc))
        log.info("worker %d started (pid %d)", index, proc.pid)
        return proc

    def _start_task(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read_lines(self, index: int, proc: asyncio.subprocess.Process) -> None:
        """A worker's reports after start-up: one line per reload."""
        assert proc.stdout is not None
        while line := await proc.stdout.readline():
            if line.startswith(workers.RELOAD_PREFIX.encode()):
                self._reloads[index].put_nowait(line.rstrip().endswith(b" ok"))

    def _died(self) -> bool:
        """Count a death or failed start; True when they come too fast (stop all)."""
        now = time.monotonic()
        self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW] + [now]
        if len(self._deaths) > MAX_RESTARTS:
            log.error("workers keep dying: stopping the server")
            self._failed = True
            self._stopping.set()
            return True
        return False

    async def _watch(self, index: int, proc: asyncio.subprocess.Process) -> None:
        while True:
            code = await proc.wait()
            self._metrics_ports[index] = None
            if self._stopping.is_set():
                return
            log.error("worker %d (pid %d) exited with status %d", index, proc.pid, code)
            if self._died():
                return
            backoff = 1.0
            while True:
                try:
                    proc = await self._spawn(index)
                except WorkerFailed as exc:
                    log.error("%s; retrying in %.0f s", exc, backoff)
                    if self._died():
                        return
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), backoff)
                    if self._stopping.is_set():
                        return
                    backoff = min(backoff * 2, MAX_BACKOFF)
                    continue
                self._restarts[index] += 1
                break

    async def _start_http(self) -> None:
        s = self.settings
        if s.metrics_port is None:
            return
        http = OpsHttpServer(self._render_metrics, CONTENT_TYPE, self._readiness)
        address = await http.start(s.metrics_host, s.metrics_port)
        self._http = http
        log.info("metrics on http://%s:%d/metrics (all workers)", *address)

    async def _render_metrics(self) -> bytes:
        bodies = await workers.scrape(self._metrics_ports)
        parts = {i: b for i, b in bodies.items() if b is not None}
        up = {i: bodies.get(i) is not None for i in range(self.settings.workers)}
        text = workers.merge_expositions(parts)
        text += workers.supervisor_families(self.settings.workers, up, self._restarts)
        return text.encode()

    async def _readiness(self) -> tuple[bool, str]:
        if self._stopping.is_set() or len(self._metrics_ports) < self.settings.workers:
            return False, "not accepting associations"
        return await workers.readiness(self._metrics_ports)

    async def run(self) -> int:
        """Serve until SIGINT/SIGTERM; returns the exit status."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._stopping.set)
        with contextlib.suppress(NotImplementedError):  # SIGHUP: every worker reloads
            loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        await self._start_http()
        try:
            procs = [await self._spawn(i) for i in range(self.settings.workers)]
        except WorkerFailed:
            await self._stop_children()
            raise
        s = self.settings
        log.info(
            "rpi-async listening on %s:%d as %s (engine %s, %d workers, database %s)",
            s.host,
            s.port,
            s.ae_title,
            s.engine,
            s.workers,
            s.db,
        )
        self._notify.ready(f"serving {s.db} on port {s.port} with {s.workers} workers")
        self._notify.start_watchdog(loop)
        watchers = [asyncio.create_task(self._watch(i, p)) for i, p in enumerate(procs)]
        await self._stopping.wait()
        self._notify.stopping()
        await self._stop_children()
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
        self._notify.close()
        return 1 if self._failed else 0

    def _on_reload_signal(self) -> None:
        self._notify.reloading()
        for queue in self._reloads.values():  # forget reports of earlier reloads
            while not queue.empty():
                queue.get_nowait()
        self._forward(signal.SIGHUP)
        self._start_task(self._await_reloads())

    async def _await_reloads(self) -> None:
        """READY=1 for systemd once every running worker has reported its reload."""
        running = [i for i, p in self._procs.items() if p.returncode is None]
        try:
            async with asyncio.timeout(RELOAD_TIMEOUT):
                results = [await self._reloads[i].get() for i in running]
        except TimeoutError:
            results = [False]
        state = "serving" if all(results) else "reload failed in a worker"
        self._notify.ready(f"{state}: {self.settings.db}")

    def _forward(self, sig: signal.Signals) -> None:
        for proc in self._procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)

    async def _stop_children(self) -> None:
        self._stopping.set()
        procs = list(self._procs.values())
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(p.wait()) for p in procs]
        if not waits:
            return
        _, pending = await asyncio.wait(waits, timeout=self.settings.shutdown_grace + 5)
        for proc in procs:
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        if pending:
            await asyncio.wait(pending, timeout=5)
