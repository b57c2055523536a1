"""The pynetdicom engine: pynetdicom owns the sockets, asyncio owns the work.

Theory of operation. pynetdicom accepts associations in its own threads (one server
thread, then two threads per association: the association and its DUL reader). Its
C-FIND and C-ECHO handlers run in the association thread. The C-FIND handler hands the
decoded identifier to the single asyncio event loop (uvloop) with
``asyncio.run_coroutine_threadsafe`` and waits for the QueryService's answer, at most
``query_timeout`` seconds; past that it answers A700 (out of resources) and cancels the
coroutine. The loop does the non-blocking SQLite lookup and the SR rendering.

pynetdicom's RPI service class sends only the first (status, identifier) that the
handler yields, then Success after a Pending (PS3.4 Q.2.1.1.4), so the handler yields
exactly one.

Settings that matter under load, which pynetdicom does not set by itself:
- TCP_NODELAY on every accepted socket (pynetdicom sends a command and its dataset as
  two P-DATA PDUs; with Nagle plus delayed ACK each response would wait ~40 ms);
- the listen backlog (socketserver's default is 5) and ``maximum_associations``
  (pynetdicom's default is 10);
- identifier logging off: pynetdicom logs request identifiers, which hold patient data.

Access control. pynetdicom has no hook for a custom accept/reject decision, but it lets
an EVT_REQUESTED handler answer the A-ASSOCIATE-RQ itself ("User used EVT_REQUESTED to
send an A-ABORT or A-ASSOCIATE-RJ", ``Association.run_reactor``): ``_on_requested``
asks the shared ``ops.access`` policy and, on a refusal, sends the A-ASSOCIATE-RJ with
the right result/source/reason, triggers EVT_REJECTED and ends the association, exactly
as pynetdicom's own ``ACSE._negotiate_as_acceptor`` does for its built-in checks.

TLS. The accepted socket is wrapped without a handshake (``do_handshake_on_connect=
False``) and the handshake runs in the connection's own thread, bounded by
``acse_timeout``, before pynetdicom sees the connection: a slow client cannot stall the
single accepting thread, and a failed handshake closes the socket at once instead of
leaving an association waiting for an A-ASSOCIATE-RQ that will never come.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, ClassVar

import pydicom.config
from pydicom.dataset import Dataset
from pynetdicom import AE, _config, evt
from pynetdicom.association import Association
from pynetdicom.transport import ThreadedAssociationServer

from rpi_async import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import PREFERRED_TRANSFER_SYNTAXES, RPI_SOP_CLASSES, SopClass
from rpi_async.engines import pynetdicom_rpi
from rpi_async.engines.assoc_log import PEER_LIMIT_REASON, REJECT_REASONS, AssociationRecord
from rpi_async.engines.assoc_log import log as access_log
from rpi_async.engines.base import EngineContext
from rpi_async.ops.access import Refusal
from rpi_async.service.query import SOP_NAMES, FindResult, Peer, QueryService
from rpi_async.ul.codes import (
    PresentationRejectReason,
    RejectResult,
    RejectSource,
    UserRejectReason,
)

log = logging.getLogger("rpi_async.ul")

C_CANCEL_RQ = 0x0FFF  # Command Field of C-CANCEL-RQ (PS3.7 Table E.1-1)


def quiet_pynetdicom() -> None:
    """Stop pynetdicom logging identifiers (patient data) and per-PDU chatter.

    pydicom's read-time validation is switched off too: its warnings quote element
    values, which may be patient data; the QueryService validates what it uses.
    """
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    pynetdicom_rpi.install()
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False
    _config.LOG_HANDLER_LEVEL = "none"


class _Server(ThreadedAssociationServer):
    """pynetdicom's server with TCP_NODELAY, a configurable listen backlog and TLS
    handshakes in the association threads."""

    request_queue_size: ClassVar[int] = 1024  # type: ignore[misc]
    daemon_threads = True
    handshake_timeout: ClassVar[float] = 30.0

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        assert self.socket is not None
        sock, address = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        context = self.ssl_context
        if context is not None:
            sock = context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, address

    def process_request_thread(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """In the connection's thread: finish the TLS handshake, then serve it."""
        if isinstance(request, ssl.SSLSocket):
            try:
                request.settimeout(self.handshake_timeout)
                request.do_handshake()
                request.settimeout(None)
            except (OSError, ValueError) as exc:
                log.info("TLS handshake with %s failed: %s", client_address[0], exc)
                self.shutdown_request(request)
                return
        super().process_request_thread(request, client_address)


class PynetdicomEngine:
    """Serves the QueryService through pynetdicom's threaded AE."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.stats = ctx.stats
        self.access = ctx.access
        self._loop: asyncio.AbstractEventLoop | None = None
        self._records: dict[int, AssociationRecord] = {}
        self._lock = threading.Lock()
        quiet_pynetdicom()

    @property
    def service(self) -> QueryService:
        """The QueryService in use now (a database reload replaces it)."""
        return self.ctx.service

    # -- AE setup ---------------------------------------------------------------------

    def make_ae(self) -> AE:
        s = self.settings
        ae = AE(ae_title=s.ae_title)
        ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
        ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
        syntaxes = [ts.value for ts in PREFERRED_TRANSFER_SYNTAXES]
        for sop in RPI_SOP_CLASSES:
            ae.add_supported_context(sop.value, syntaxes)
        ae.add_supported_context(SopClass.VERIFICATION.value, syntaxes)
        ae.maximum_associations = s.max_associations
        ae.maximum_pdu_size = s.max_pdu_size
        ae.acse_timeout = s.acse_timeout
        ae.dimse_timeout = s.dimse_timeout
        ae.network_timeout = s.network_timeout
        ae.require_called_aet = not s.accept_any_called_ae
        ae.require_calling_aet = []  # the access policy decides, in _on_requested
        return ae

    def handlers(self) -> list[evt.EventHandlerType]:
        return [
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_CONN_OPEN, self._on_conn_open),
            (evt.EVT_REQUESTED, self._on_requested),
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
            (evt.EVT_CONN_CLOSE, self._on_conn_close),
            (evt.EVT_DIMSE_RECV, self._on_dimse_recv),
        ]

    # -- serving ----------------------------------------------------------------------

    async def serve(self, on_ready: Callable[[tuple[str, int]], None], stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        ae = self.make_ae()
        server_class = type(
            "Server",
            (_Server,),
            {
                "request_queue_size": self.settings.backlog,
                "handshake_timeout": self.settings.acse_timeout,
            },
        )
        server = ae.make_server(
            (self.settings.host, self.settings.port),
            evt_handlers=self.handlers(),
            server_class=server_class,
            ssl_context=self.ctx.ssl_context,
        )
        thread = threading.Thread(
            target=server.serve_forever, name="rpi-async-acceptor", daemon=True
        )
        thread.start()
        host, port = server.server_address[:2]
        on_ready((str(host), int(port)))
        try:
            await stop.wait()
        finally:
            await asyncio.to_thread(self._shutdown, server, thread)

    def _shutdown(self, server: ThreadedAssociationServer, thread: threading.Thread) -> None:
        """Stop accepting, give in-flight associations the grace period, abort the rest."""
        active = server.active_associations
        # socketserver's shutdown, not pynetdicom's: the server was made with make_server,
        # so it is not in the AE's own list of servers.
        socketserver.BaseServer.shutdown(server)  # stops serve_forever
        server.server_close()  # closes the listening socket
        thread.join()
        deadline = time.monotonic() + self.settings.shutdown_grace
        for assoc in active:
            assoc.join(max(0.0, deadline - time.monotonic()))
        for assoc in server.active_associations:
            if assoc.is_alive():
                log.warning("aborting association still open at shutdown")
                assoc.abort()

    # -- event handlers (pynetdicom threads) ----------------------------------------

    def _record(self, assoc: Association) -> AssociationRecord:
        with self._lock:
            rec = self._records.get(id(assoc))
            if rec is None:
                addr = assoc.requestor.address
                rec = AssociationRecord(f"{addr}:{assoc.requestor.port}", time.monotonic())
                self._records[id(assoc)] = rec
            return rec

    def _on_conn_open(self, event: evt.Event) -> None:
        self._record(event.assoc)

    def _on_requested(self, event: evt.Event) -> None:
        """Ask the access policy; refuse with the right A-ASSOCIATE-RJ if it says no."""
        assoc = event.assoc
        rec = self._record(assoc)
        request = assoc.requestor.primitive
        calling = str(getattr(request, "calling_ae_title", "")).strip()
        address = str(assoc.requestor.address)
        rec.calling_ae = calling
        decision = self.access.admit(calling, address)
        if decision.admitted:
            rec.peer_slot = address if self.access.max_per_peer else None
            return
        rsd: tuple[int, int, int]
        if decision.refusal is Refusal.PEER_LIMIT:
            rec.refused_as = PEER_LIMIT_REASON
            rsd = (
                RejectResult.TRANSIENT,
                RejectSource.SERVICE_PROVIDER_PRESENTATION,
                PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
            )
        else:
            rsd = (
                RejectResult.PERMANENT,
                RejectSource.SERVICE_USER,
                UserRejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED,
            )
        assoc.acse.send_reject(*(int(v) for v in rsd))  # plain ints on the wire
        evt.trigger(assoc, evt.EVT_REJECTED, {})
        assoc.kill()

    def _on_accepted(self, event: evt.Event) -> None:
        rec = self._record(event.assoc)
        rec.calling_ae = event.assoc.requestor.ae_title.strip()
        rec.called_ae = event.assoc.acceptor.ae_title.strip()
        rec.outcome = "accepted"
        self.stats.association_opened()

    def _on_rejected(self, event: evt.Event) -> None:
        rec = self._record(event.assoc)
        prim = event.assoc.acceptor.primitive
        key = (getattr(prim, "result_source", 0), getattr(prim, "diagnostic", 0))
        reason = rec.refused_as or REJECT_REASONS.get(key, f"source-{key[0]}-reason-{key[1]}")
        rq = event.assoc.requestor
        rec.calling_ae = str(getattr(rq, "ae_title", "")).strip()
        rec.outcome = f"rejected ({reason})"
        self.stats.association_rejected(reason)

    def _on_released(self, event: evt.Event) -> None:
        self._record(event.assoc).outcome = "released"

    def _on_aborted(self, event: evt.Event) -> None:
        self._record(event.assoc).outcome = "aborted"

    def _on_conn_close(self, event: evt.Event) -> None:
        with self._lock:
            rec = self._records.pop(id(event.assoc), None)
        if rec is None:
            return
        if rec.peer_slot is not None:
            self.access.release(rec.peer_slot)
            rec.peer_slot = None
        if rec.outcome in ("accepted", "released", "aborted"):
            if rec.outcome == "accepted":
                rec.outcome = "closed"
            self.stats.association_closed(aborted=rec.outcome != "released")
        access_log.info("%s", rec.line(time.monotonic()))

    def _on_echo(self, event: evt.Event) -> int:
        self.stats.echo_answered()
        self._record(event.assoc).sops.append("verification")
        return int(FindStatus.SUCCESS)

    def _on_dimse_recv(self, event: evt.Event) -> None:
        """Note C-CANCELs as they arrive (pynetdicom keeps them only for its own check)."""
        command = event.message.command_set
        if command.get("CommandField") == C_CANCEL_RQ:
            self._record(event.assoc).cancelled.add(int(command.MessageIDBeingRespondedTo))
            self.stats.cancel_received()

    def _on_find(self, event: evt.Event) -> Iterator[tuple[Dataset, Dataset | None]]:
        assoc = event.assoc
        rec = self._record(assoc)
        sop_uid = str(event.request.AffectedSOPClassUID)
        rec.sops.append(SOP_NAMES.get(sop_uid, "unknown"))
        peer = Peer(assoc.requestor.ae_title.strip(), assoc.requestor.address, assoc.requestor.port)
        try:
            identifier: Dataset | None = event.identifier
        except Exception:
            identifier = None
        result = self._run_find(identifier, sop_uid, peer, event)
        if result.status is not FindStatus.CANCEL and event.is_cancelled:
            result = FindResult(FindStatus.CANCEL)
        rec.statuses.append(int(result.status))
        if result.status is FindStatus.PENDING:
            rec.statuses.append(int(FindStatus.SUCCESS))
        yield result.status_dataset(), result.identifier

    def _run_find(
        self, identifier: Dataset | None, sop_uid: str, peer: Peer, event: evt.Event
    ) -> FindResult:
        loop = self._loop
        assert loop is not None
        cancelled = [False]

        message_id = int(event.request.MessageID or 0)
        noted = self._record(event.assoc).cancelled

        def is_cancelled() -> bool:
            cancelled[0] = cancelled[0] or message_id in noted or bool(event.is_cancelled)
            return cancelled[0]

        future = asyncio.run_coroutine_threadsafe(
            self.service.find(identifier, sop_uid, peer, is_cancelled=is_cancelled), loop
        )
        try:
            # The service answers A700 itself at query_timeout; this is the backstop.
            return future.result(self.settings.query_timeout + 1.0)
        except FutureTimeout:
            future.cancel()
            log.warning(
                "query from %s timed out after %.1f s", peer.ae_title, self.settings.query_timeout
            )
            return FindResult(FindStatus.OUT_OF_RESOURCES, error_comment="Query timed out")
        except Exception as exc:  # the loop is gone (shutting down)
            log.error("query from %s could not run: %s", peer.ae_title, exc)
            return FindResult(FindStatus.OUT_OF_RESOURCES, error_comment="Service stopping")
