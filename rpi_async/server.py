"""Run one rpi-async server: store, query service and engine on one event loop.

``Server`` is the library entry point (the CLI and the tests use it): open the store,
build the QueryService, start the engine, and on ``stop()`` (SIGINT/SIGTERM in the CLI)
stop accepting, let in-flight associations finish within ``shutdown_grace``, close the
database and return.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from rpi_async.config import Settings
from rpi_async.engines import EngineContext, create_engine
from rpi_async.errors import ConfigError
from rpi_async.service.query import QueryService
from rpi_async.service.stats import ServerStats
from rpi_async.store.reader import PatientStore

log = logging.getLogger("rpi_async.server")


class Server:
    """One listening server. ``async with Server(settings) as srv`` or ``await run()``."""

    def __init__(self, settings: Settings, *, worker: bool = False) -> None:
        if settings.db is None:
            raise ConfigError("no database given (use --db PATH or --demo)")
        self.settings = settings
        self.worker = worker  # one of several processes started by the Supervisor
        self.stats = ServerStats()
        self.address: tuple[str, int] | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.store: PatientStore | None = None

    @property
    def port(self) -> int:
        assert self.address is not None
        return self.address[1]

    def stop(self) -> None:
        self._stop.set()

    async def start(self) -> None:
        """Open the store and start listening; returns once the port is bound."""
        assert self.settings.db is not None
        self.store = await PatientStore.open(
            Path(self.settings.db), readers=self.settings.store_readers
        )
        service = QueryService(self.store, stats=self.stats)
        engine = create_engine(EngineContext(self.settings, service, self.stats))

        def on_ready(address: tuple[str, int]) -> None:
            self.address = address
            self._ready.set()

        self._task = asyncio.create_task(engine.serve(on_ready, self._stop))
        ready = asyncio.create_task(self._ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            await self.store.close()
            self._task.result()  # raises the engine's start-up error
            raise RuntimeError("engine stopped before it was ready")
        log.info(
            "%s on %s:%d as %s (engine %s, database %s)",
            f"worker {os.getpid()} listening" if self.worker else "rpi-async listening",
            self.address[0] if self.address else "?",
            self.port,
            self.settings.ae_title,
            self.settings.engine,
            self.settings.db,
        )

    async def wait_closed(self) -> None:
        """Wait for the engine to finish its shutdown, then close the store."""
        try:
            if self._task is not None:
                await self._task
        finally:
            if self.store is not None:
                await self.store.close()
            log.info(
                "rpi-async stopped: %d associations, %d queries",
                self.stats.associations_accepted,
                self.stats.total_queries(),
            )

    async def __aenter__(self) -> Server:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        await self.wait_closed()

    async def run(self, *, announce: bytes | None = None) -> None:
        """Serve until SIGINT or SIGTERM. ``announce`` is written to stdout once listening."""
        loop = asyncio.get_running_loop()
        await self.start()
        if announce is not None:
            sys.stdout.buffer.write(announce)
            sys.stdout.buffer.flush()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._on_signal, sig)
        await self.wait_closed()

    def _on_signal(self, sig: signal.Signals) -> None:
        log.info("received %s: stopping (grace %.0f s)", sig.name, self.settings.shutdown_grace)
        self.stop()


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Server]:
    async with Server(settings) as server:
        yield server
