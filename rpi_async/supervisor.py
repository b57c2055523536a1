"""``--workers N``: N native-engine processes sharing one port, watched by a parent.

Theory of operation. The parent resolves the port (binding port 0 once if asked for
any free port), then starts N copies of ``rpi-async serve`` as child processes with
the effective settings passed in ``RPI_ASYNC_*`` variables, ``workers=1`` and
``reuse_port=true``: each child has its own event loop and database connections, and
the kernel spreads new connections across them (SO_REUSEPORT). A child reports that
it listens by writing one line on its stdout. A child that dies is restarted; one that
keeps dying (more than ``MAX_RESTARTS`` within ``RESTART_WINDOW`` seconds) stops the
whole server with exit status 1. SIGINT/SIGTERM are forwarded to every child, which
shuts down gracefully; the parent exits 0 once all have.
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

from rpi_async.config import Settings
from rpi_async.config.settings import to_environment
from rpi_async.errors import RpiError

log = logging.getLogger("rpi_async.server")

READY_LINE = b"rpi-async worker ready\n"
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
START_TIMEOUT = 60.0


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
        self.child_settings = self.settings.replace(workers=1, reuse_port=True)
        self._stopping = asyncio.Event()
        self._procs: dict[int, asyncio.subprocess.Process] = {}
        self._deaths: list[float] = []

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RPI_ASYNC_")}
        env.update(to_environment(self.child_settings))
        if self.settings.metrics_port:  # each worker its own metrics port: P, P+1, ...
            env["RPI_ASYNC_METRICS_PORT"] = str(self.settings.metrics_port + index)
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
        if line != READY_LINE:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            raise WorkerFailed(f"worker {index} failed to start (exit status {proc.returncode})")
        self._procs[index] = proc
        log.info("worker %d started (pid %d)", index, proc.pid)
        return proc

    async def _watch(self, index: int, proc: asyncio.subprocess.Process) -> None:
        while True:
            code = await proc.wait()
            if self._stopping.is_set():
                return
            now = time.monotonic()
            self._deaths = [t for t in self._deaths if now - t < RESTART_WINDOW] + [now]
            log.error("worker %d (pid %d) exited with status %d", index, proc.pid, code)
            if len(self._deaths) > MAX_RESTARTS:
                log.error("workers keep dying: stopping the server")
                self._failed = True
                self._stopping.set()
                return
            proc = await self._spawn(index)

    async def run(self) -> int:
        """Serve until SIGINT/SIGTERM; returns the exit status."""
        self._failed = False
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._stopping.set)
        with contextlib.suppress(NotImplementedError):  # SIGHUP: every worker reloads
            loop.add_signal_handler(signal.SIGHUP, self._forward, signal.SIGHUP)
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
        watchers = [asyncio.create_task(self._watch(i, p)) for i, p in enumerate(procs)]
        await self._stopping.wait()
        await self._stop_children()
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
        return 1 if self._failed else 0

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
