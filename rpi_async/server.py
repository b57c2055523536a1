"""Run one rpi-async server: store, query service and engine on one event loop.

``Server`` is the library entry point (the CLI and the tests use it): open the store,
build the QueryService and the operations features (access policy, TLS, in-flight
limit, audit trail, metrics port), start the engine, and on ``stop()`` (SIGINT/SIGTERM
in the CLI) stop accepting, let in-flight associations finish within
``shutdown_grace``, close the database and return.

Lifecycle: ``start`` enters an anyio task group and starts the engine in it
(``TaskGroup.start``: it returns once the engine listens, or raises the engine's
start-up error); reloads and the closing of retired stores run in the same group;
``wait_closed`` leaves the group (the engine's shutdown done, the other tasks finished),
then closes the operations features and the stores. ``start`` and ``wait_closed`` are
called from the same task (``async with Server(...)``, ``run``).

SIGHUP (``reload``) reopens the database at the configured path: the way to serve a
rebuilt replica without a restart is to write the new file next to the old one,
``rename()`` it over the configured path, then send SIGHUP. New queries go to a new
QueryService on the new file; queries already running finish on the old one, which is
closed ``query_timeout`` seconds later. If the new file cannot be opened the server
keeps serving the old one and logs why. SIGHUP also reopens the audit file (log
rotation).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sqlite3
import ssl
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
from anyio import TASK_STATUS_IGNORED
from anyio.abc import TaskGroup, TaskStatus

from rpi_async.capacity import automatic_max_associations, automatic_per_peer
from rpi_async.config import Settings
from rpi_async.dicom.quiet import pydicom_warnings_as_errors
from rpi_async.engines import EngineContext, create_engine
from rpi_async.engines.access import AccessPolicy
from rpi_async.engines.base import Engine, ServiceSlot
from rpi_async.errors import ConfigError, RpiError, StoreUnavailable
from rpi_async.ops.audit import ActivityAudit, AuditTrail, SecurityAudit
from rpi_async.ops.hooks import QueryHooks
from rpi_async.ops.http import OpsHttpServer
from rpi_async.ops.metrics import CONTENT_TYPE, Metrics
from rpi_async.ops.notify import Notifier
from rpi_async.ops.setup import build_audit
from rpi_async.ops.shedding import InFlightLimiter
from rpi_async.ops.store_info import StoreIdentity, identify
from rpi_async.ops.workers import ready_line, reload_line
from rpi_async.service.query import QueryService
from rpi_async.service.request import RequestReader
from rpi_async.service.stats import ServerStats
from rpi_async.sr.render_bytes import Renderer
from rpi_async.store.reader import PatientStore

log = logging.getLogger("rpi_async.server")

READY_PING_TIMEOUT = 2.0


# The cyclic collector's thresholds once serving (CPython's defaults: 700, 10, 10).
GC_THRESHOLDS = (50_000, 20, 100)


def tune_collector() -> None:
    """Make the cyclic garbage collector cheap for a serving process (after start-up).

    A query allocates a few thousand containers (the parsed compact document, one tuple
    per fact, the content items) that live until its answer is sent and are freed by
    reference counting; they form no cycles. With the default thresholds the collector
    runs every 700 allocations, traverses those short-lived objects, promotes them, and
    every so often walks the whole heap: templates, interned codes and caches included.
    Freezing what start-up built (``gc.freeze``: it is never collected, it lives as long
    as the process), collecting the young generation every 50,000 allocations and the older
    ones more rarely still (``GC_THRESHOLDS``) saves about 4 % of the server's CPU per
    association on average (five alternating pairs of ``benchmarks/assoc_cpu.py`` runs,
    from -9 % to +4 %, so within this machine's noise). Garbage cycles, rare here, are
    still collected.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Server:
    """One listening server. ``async with Server(settings) as srv`` or ``await run()``."""

    def __init__(self, settings: Settings, *, worker: bool = False) -> None:
        if settings.db is None:
            raise ConfigError("no database given (use --db PATH or --demo)")
        self.settings = settings
        self.worker = worker  # one of several processes started by the Supervisor
        self.stats = ServerStats()
        self.limiter = InFlightLimiter(settings.max_in_flight)
        self.address: tuple[str, int] | None = None
        self.metrics_address: tuple[str, int] | None = None
        self.audit: AuditTrail | None = None
        self.access: AccessPolicy | None = None
        self._stop = asyncio.Event()
        self._draining = False  # SIGTERM seen: /readyz 503 for drain_delay, then stop
        self._ready = asyncio.Event()
        # The server's tasks (the engine, reloads, closing retired stores) run in one anyio
        # task group, entered by ``start`` and left by ``wait_closed`` (the same task).
        self._tasks: TaskGroup | None = None
        self._services: ServiceSlot | None = None
        self._http: OpsHttpServer | None = None
        self._retired: set[PatientStore] = set()
        self._reload_lock = asyncio.Lock()
        self.store: PatientStore | None = None
        self.store_identity: StoreIdentity | None = None  # of the file opened last
        # The process's query caches, shared by every QueryService this server builds.
        self.reader = RequestReader()
        self.renderer = Renderer()
        self.monitor = QueryHooks(self.limiter, called_ae=settings.ae_title)
        self._notify = Notifier(None)  # ``run`` talks to systemd when started by it

    @property
    def port(self) -> int:
        assert self.address is not None
        return self.address[1]

    @property
    def db_path(self) -> Path:
        assert self.settings.db is not None
        return Path(self.settings.db)

    def stop(self) -> None:
        self._stop.set()

    async def _open_store(self) -> PatientStore:
        s = self.settings
        return await PatientStore.open(
            self.db_path,
            readers=s.store_readers,
            inline=s.store_inline,
            mmap_bytes=s.store_mmap_mib << 20,
        )

    async def _identify_store(self) -> None:
        try:
            self.store_identity = await asyncio.to_thread(identify, self.db_path)
        except (OSError, sqlite3.Error, RpiError) as exc:
            self.store_identity = None
            log.warning("cannot read the identity of %s: %s", self.db_path, exc)
            return
        self._check_stored_answers(self.store_identity)

    def _check_stored_answers(self, identity: StoreIdentity) -> None:
        """Warn when the file's stored answers are not this version's: the server then
        renders every hit live (the same answers, at more CPU per query) until they are
        rendered again, which only the ``db`` commands do (the server reads the file)."""
        if identity.patients == 0 or identity.answer_renderers == {self.renderer.fingerprint}:
            return
        if not identity.answer_renderers:
            what = "has no stored answers"
        else:
            what = "has stored answers that another version of rpi-async rendered"
        log.warning(
            "%s %s: every hit is rendered live, at more CPU per query, until "
            "`rpi-async db prerender --db %s` renders them",
            self.db_path,
            what,
            self.db_path,
        )

    def _identity_text(self) -> str:
        i = self.store_identity
        if i is None:
            return "identity unknown"
        return f"content {i.content}, generation {i.generation}, {i.patients} patients"

    def _service(self, store: PatientStore) -> QueryService:
        return QueryService(
            store,
            stats=self.stats,
            monitor=self.monitor,
            reader=self.reader,
            renderer=self.renderer,
            query_timeout=self.settings.query_timeout,
        )

    async def start(self) -> None:
        """Open the store and start listening; returns once the port is bound."""
        pydicom_warnings_as_errors()
        sizing = "set"
        if self.settings.max_associations == 0:
            limit, why = automatic_max_associations(self.settings.workers)
            self.settings = self.settings.replace(max_associations=limit)
            sizing = f"from {why}"
        if self.settings.max_associations_per_peer == -1:
            per_peer = automatic_per_peer(
                self.settings.engine,
                self.settings.max_associations,
                self.settings.pynetdicom_workers,
            )
            self.settings = self.settings.replace(max_associations_per_peer=per_peer)
        s = self.settings
        access = AccessPolicy.from_settings(s.allowed_calling_aes, s.max_associations_per_peer)
        self.access = access
        ssl_context = _tls_context(s)
        self.store = await self._open_store()
        await self._identify_store()
        try:
            await self._start_ops()
            if ssl_context is not None and self.audit is not None:
                from rpi_async.ops.tls import report_handshake_failures

                report_handshake_failures(ssl_context, self._tls_failed)
            self._services = ServiceSlot(self._service(self.store))
            engine = create_engine(
                EngineContext(s, self._services, self.stats, access, ssl_context)
            )
            await self._start_engine(engine)
        except BaseException:
            await self._close_ops()
            await self.store.close()
            raise
        if self.audit is not None:
            self.audit.submit(ActivityAudit(time.time(), True, s.ae_title))
        log.info(
            "%s on %s:%d as %s (engine %s%s, database %s: %s; max_associations %d %s, %d per peer)",
            f"worker {os.getpid()} listening" if self.worker else "rpi-async listening",
            self.address[0] if self.address else "?",
            self.port,
            s.ae_title,
            s.engine,
            ", TLS" if ssl_context else "",
            s.db,
            self._identity_text(),
            s.max_associations,
            sizing,
            s.max_associations_per_peer,
        )

    async def _start_ops(self) -> None:
        """Audit trail, histograms and the metrics port, as configured."""
        s = self.settings
        self.audit = build_audit(s)
        timings = None
        if s.metrics_port is not None:
            metrics = Metrics(
                self.stats,
                self.limiter,
                engine=s.engine,
                audit=self.audit,
                store=lambda: self.store_identity,
            )
            timings = metrics.timings

            async def render() -> bytes:
                return metrics.render()

            http = OpsHttpServer(render, CONTENT_TYPE, self.readiness)
            self.metrics_address = await http.start(s.metrics_host, s.metrics_port)
            self._http = http
            log.info("metrics on http://%s:%d/metrics", *self.metrics_address)
        self.monitor.timings = timings
        self.monitor.audit = self.audit
        if self.audit is not None and self.access is not None:
            self.access.on_refused = self._refused

    def _tls_failed(self, address: str, reason: str) -> None:
        """Security Alert for a failed TLS handshake (any thread)."""
        if self.audit is not None:
            where = f" from {address}" if address else ""
            text = f"TLS handshake failed{where}: {reason}"
            self.audit.submit(SecurityAudit(time.time(), text, "", address))

    def _refused(self, calling_ae: str, address: str) -> None:
        """Security Alert for an association the access policy refused (any thread)."""
        if self.audit is not None:
            reason = f"association refused: calling AE {calling_ae!r} not allowed from {address}"
            self.audit.submit(SecurityAudit(time.time(), reason, calling_ae, address))

    async def _start_engine(self, engine: Engine) -> None:
        """The engine in the task group; returns once it listens, raises its start-up
        error (the group, having no other task yet, is left at once)."""
        tasks = anyio.create_task_group()
        await tasks.__aenter__()
        try:
            self.address = await tasks.start(self._serve_engine, engine)
        except BaseException as exc:
            self._stop.set()
            # The group holds no other task: left as if cleanly, it adds nothing; given
            # the error, it would wrap it in an exception group.
            await tasks.__aexit__(None, None, None)
            raise exc from None
        self._tasks = tasks
        self._ready.set()

    async def _serve_engine(
        self, engine: Engine, *, task_status: TaskStatus[tuple[str, int]] = TASK_STATUS_IGNORED
    ) -> None:
        await engine.serve(task_status.started, self._stop)

    async def _close_ops(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self.audit is not None:
            if self._ready.is_set():  # it had started: Application Stop
                self.audit.submit(ActivityAudit(time.time(), False, self.settings.ae_title))
            if self.access is not None:
                self.access.on_refused = None
            self.monitor.audit = None
            await asyncio.to_thread(self.audit.close)
            self.audit = None

    async def readiness(self) -> tuple[bool, str]:
        """(ready, reason): accepting associations and the database answers."""
        if not self._ready.is_set() or self._stop.is_set():
            return False, "not accepting associations"
        if self._draining:
            return False, "stopping: draining before the port closes"
        path = self.db_path
        if not os.access(path, os.R_OK):
            return False, "database file is missing or unreadable"  # no path: the body is public
        store = self.store
        if store is None:
            return False, "no database open"
        try:
            await asyncio.wait_for(store.ping(), READY_PING_TIMEOUT)
        except TimeoutError:
            return False, "database did not answer in time"
        except StoreUnavailable as exc:
            return False, str(exc)
        return True, "ready"

    async def reload(self) -> bool:
        """Reopen the database at the configured path; False (old one kept) on failure."""
        async with self._reload_lock:
            if self.audit is not None:
                self.audit.reopen()
            try:
                store = await self._open_store()
            except RpiError as exc:
                log.error("database reload failed, still serving the previous file: %s", exc)
                return False
            old, self.store = self.store, store
            await self._identify_store()
            if self._services is not None:
                self._services.current = self._service(store)
            if old is not None:
                self._retired.add(old)
                loop = asyncio.get_running_loop()
                loop.call_later(self.settings.query_timeout, self._close_retired, old)
            log.info("database reopened: %s (%s)", self.db_path, self._identity_text())
            return True

    def _close_retired(self, store: PatientStore) -> None:
        if store in self._retired and not self._stop.is_set():  # else wait_closed does it
            self._retired.discard(store)
            self._spawn(store.close)

    def _spawn(self, job: Callable[[], Awaitable[object]]) -> None:
        """Run ``job`` in the server's task group; its failure is logged, not raised
        (it must not cancel the engine)."""
        if self._tasks is None:
            return

        async def quietly() -> None:
            try:
                await job()
            except Exception as exc:
                log.warning("background task failed: %s", exc)

        self._tasks.start_soon(quietly)

    async def wait_closed(self) -> None:
        """Wait for the engine to finish its shutdown (the task group to be left, its
        other tasks done), then close the store."""
        tasks = self._tasks  # still open to new tasks (a reload) until it is left
        try:
            if tasks is not None:
                try:
                    await tasks.__aexit__(None, None, None)
                except BaseExceptionGroup as group:  # the engine failed: its own error
                    if len(group.exceptions) == 1:
                        raise group.exceptions[0] from None
                    raise
        finally:
            self._tasks = None
            await self._close_ops()
            for store in [*self._retired, self.store]:
                if store is not None:
                    await store.close()
            self._retired.clear()
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

    async def run(self) -> None:
        """Serve until SIGINT or SIGTERM (SIGHUP: reload), telling systemd (``ops.notify``)
        or, as a worker, the supervisor (lines on stdout, ``ops.workers``) how it goes."""
        loop = asyncio.get_running_loop()
        # Handlers first: a signal that arrives while starting must not kill the process.
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self._on_signal, sig)
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, self._on_reload_signal)
        if not self.worker:  # a worker's supervisor speaks to systemd for the group
            self._notify = Notifier.from_environ()
        await self.start()
        tune_collector()
        if self.worker:
            port = self.metrics_address[1] if self.metrics_address else None
            _tell_supervisor(ready_line(port))
        self._notify.ready(f"serving {self.db_path} on port {self.port}")
        self._notify.start_watchdog(loop)
        try:
            await self.wait_closed()
        finally:
            self._notify.close()

    async def _reload_and_report(self) -> None:
        ok = await self.reload()
        if self.worker:
            _tell_supervisor(reload_line(ok))
        state = "serving" if ok else "reload failed, still serving the previous file"
        self._notify.ready(f"{state}: {self.db_path}")

    def _on_signal(self, sig: signal.Signals) -> None:
        """Stop; with ``drain_delay``, first answer /readyz 503 for that long while still
        accepting, so a load balancer's health check takes the node out before the port
        closes (a connection the balancer forwards then is never refused). A second
        signal stops at once."""
        self._notify.stopping()
        delay = self.settings.drain_delay
        if self._draining or delay <= 0 or not self._ready.is_set():
            log.info("received %s: stopping (grace %.0f s)", sig.name, self.settings.shutdown_grace)
            self.stop()
            return
        self._draining = True
        log.info(
            "received %s: not ready, stopping in %.1f s (grace %.0f s)",
            sig.name,
            delay,
            self.settings.shutdown_grace,
        )
        asyncio.get_running_loop().call_later(delay, self.stop)

    def _on_reload_signal(self) -> None:
        if not self._ready.is_set():
            log.warning("received SIGHUP while starting: ignored")
            return
        log.info("received SIGHUP: reopening the database %s", self.db_path)
        self._notify.reloading()
        self._spawn(self._reload_and_report)


def _tell_supervisor(line: bytes) -> None:
    sys.stdout.buffer.write(line)
    sys.stdout.buffer.flush()


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    if settings.tls_cert is None:
        return None
    from rpi_async.ops.tls import server_context

    return server_context(
        Path(settings.tls_cert),
        Path(settings.tls_key) if settings.tls_key else None,
        ca=Path(settings.tls_ca) if settings.tls_ca else None,
        require_client_cert=settings.tls_require_client_cert,
    )


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Server]:
    async with Server(settings) as server:
        yield server
