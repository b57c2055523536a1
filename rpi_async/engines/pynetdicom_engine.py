"""The pynetdicom engine: pynetdicom runs the associations, our socket layer feeds them.

Theory of operation. The ``pynetdicom_transport.Acceptor`` thread accepts connections
and reads each one's A-ASSOCIATE-RQ through the sans-I/O ``ul.Connection`` (ARTIM,
length limits, PS3.8's answers to malformed input, exactly as the native engine), then
asks ``screen``: AE title, access policy, ``max_associations`` and ``ul.negotiate``'s
rejections, the same decisions as the native engine's. A refused request gets its
A-ASSOCIATE-RJ from the acceptor; an admitted one is handed, re-encoded, to one of
``pynetdicom_workers`` pool threads, which runs pynetdicom's association reactor itself
(``Association.run``) over a ``GuardedSocket``: pynetdicom's DUL sees only complete
PDUs that ``ul.pdu`` and ``ul.dimse`` have checked, each within its completion
deadline. No worker ever waits for a peer that has not finished its request, so slow
peers cost a selector entry, not a thread; the per-peer limit keeps one address from
holding every worker. pynetdicom's acceptor also runs ``gc.collect()`` every 60
connections; ours does not.

Each association still runs on pynetdicom's two reactors, its association reactor (in the
pool thread) and its DUL (a thread of its own), but they wait for events instead of
polling every millisecond (``pynetdicom_reactors``), and requests reach the association
as the messages ``GuardedSocket`` has decoded already (``EventDIMSE``): pydicom decodes
no request a second time.

C-FIND (``pynetdicom_rpi``): the handler hands the identifier bytes, as received, to
the QueryService on the asyncio event loop through an anyio ``BlockingPortal`` and
waits for the ``Answer``, at most ``query_timeout`` + 1 s (the service answers A700
itself at ``query_timeout``); the loop does the lookup (aiosqlite) and renders the
answer bytes; the responses go out as P-DATA-TF PDUs that ``ul.dimse`` encodes, which
pynetdicom's DUL sends as they are. pydicom never touches an identifier.
A C-FIND on a context of another abstract syntax is refused (0122H) by ``_Association``
before pynetdicom looks for a service class.

Bookkeeping (``engines.lifecycle``, shared with the native engine): the acceptor
records the connection, the screening and any rejection; pynetdicom's events report
acceptance, release and abort; the pool thread closes the record when the
association's reactor returns.

Settings pynetdicom does not set by itself: TCP_NODELAY on every accepted socket (a
C-FIND answer is two messages, Pending and Success, sent one after the other: with Nagle
plus delayed ACK the second would wait ~40 ms), the listen backlog, and identifier
logging off (pynetdicom logs request identifiers, which hold patient data). With TLS the handshake
runs in the acceptor, without blocking, within ARTIM.

Shutdown: associations with no operation in progress are aborted at once, the others
get ``shutdown_grace`` to finish (their peers release once answered); meanwhile the
acceptor keeps accepting and answers every request, the listen queue's included, with
A-ASSOCIATE-RJ rejected-transient, a refusal a client retries, and stops only then.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, cast

import anyio.from_thread
from pynetdicom import AE, evt
from pynetdicom._globals import MODE_ACCEPTOR
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.transport import AssociationServer, RequestHandler

from rpi_async import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from rpi_async.dicom.quiet import silence_pynetdicom
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import PREFERRED_TRANSFER_SYNTAXES, RPI_SOP_CLASSES, SopClass
from rpi_async.engines import pynetdicom_reactors, pynetdicom_rpi
from rpi_async.engines.access import Refusal
from rpi_async.engines.base import EngineContext
from rpi_async.engines.lifecycle import (
    LOCAL_LIMIT_REPLY,
    AssociationRecord,
    Lifecycle,
    Outcome,
    ReceiveBudget,
    escaped,
)
from rpi_async.engines.pynetdicom_reactors import EventAssociation, EventDIMSE
from rpi_async.engines.pynetdicom_transport import (
    Acceptor,
    CommandScreen,
    GuardedSocket,
    ReceiveLimits,
)
from rpi_async.service import rules
from rpi_async.service.monitor import Peer
from rpi_async.service.query import SOP_NAMES, QueryService
from rpi_async.service.rules import Answer
from rpi_async.ul import AcceptorPolicy, negotiate
from rpi_async.ul.codes import AbortReason, AbortSource
from rpi_async.ul.pdu import AAbort, AAssociateRJ, AAssociateRQ, write_pdu

log = logging.getLogger("rpi_async.ul")

MAX_ASSOCIATIONS_UNCHECKED = 1 << 30  # pynetdicom's own limit: the engine checks its own
SHUTDOWN_ABORT_WAIT = 2.0  # after the grace period, for aborted associations to end
MAX_MESSAGE_LENGTH = 16 * 1024 * 1024  # a DIMSE message received, as the native engine's
_SHUTDOWN_ABORT = write_pdu(AAbort(AbortSource.SERVICE_PROVIDER, AbortReason.NOT_SPECIFIED))
MAX_PDU_UNBOUNDED = 0xFFFFFFFF  # max_pdu_size 0, as ul.negotiate takes it
DUL_THREADS_PER_WORKER = 4  # the DUL pool's bound, per association worker: never reached


class _PoolServer(AssociationServer):
    """pynetdicom's server: its listening socket, contexts and handlers. ``Acceptor``
    accepts on it; each admitted association runs on a bounded pool of threads."""

    def __init__(self, engine: PynetdicomEngine, *args: Any, **kwargs: Any) -> None:
        self.engine = engine
        self.request_queue_size = engine.settings.backlog
        workers = max(1, engine.settings.pynetdicom_workers)
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="rpi-assoc")
        # Each association's DUL runs on a thread of this pool, not on a thread started
        # for it; a DUL ends before its association does, so it never fills up.
        self.dul_pool = ThreadPoolExecutor(DUL_THREADS_PER_WORKER * workers, "rpi-dul")
        AssociationServer.__init__(self, *args, **kwargs)


class _Association(EventAssociation):
    """pynetdicom's acceptor association on event-driven reactors
    (``pynetdicom_reactors``), refusing a C-FIND on another context's SOP class before
    pynetdicom looks for its service."""

    def _serve_request(self, msg: Any, context_id: int) -> None:
        """C-FIND on another context's SOP class: 0122H, as the native engine answers."""
        context = self._accepted_cx.get(context_id)
        if (
            isinstance(msg, C_FIND)
            and context is not None
            and pynetdicom_rpi.refuse_other_sop_class(self, msg, context)
        ):
            return
        super()._serve_request(msg, context_id)


def _idle(association: Association, record: AssociationRecord) -> bool:
    """Established, no operation in progress, nothing received and not yet handled."""
    sock = association.dul.socket
    return (
        record.outcome is Outcome.ACCEPTED
        and not record.busy
        and association.dimse.msg_queue.empty()
        and association.dul.event_queue.empty()
        and not (isinstance(sock, GuardedSocket) and sock.holding_input)
    )


class _Handler(RequestHandler):
    """pynetdicom's request handler, made to create the Association without starting
    its thread: the pool thread runs it (``Association.run``)."""

    def handle(self) -> None:
        """Nothing: socketserver calls this on construction; ``create`` does the work."""

    def create(
        self,
        limits: ReceiveLimits,
        budget: ReceiveBudget,
        commands: CommandScreen,
        request: bytes,
        received: bytes,
    ) -> Association:
        """An acceptor association for this connection, as pynetdicom's handler makes one
        (``RequestHandler._create_association``), of class ``_Association``, reading
        through a ``GuardedSocket`` that holds the bytes already ``received``. Its
        supported contexts are the server's own list, not a deep copy of it (pynetdicom's
        handler copies; its negotiation only reads them)."""
        server = self.server
        assoc = _Association(self.ae, MODE_ACCEPTOR)
        assoc._server = server
        assoc.set_socket(
            GuardedSocket(assoc, self.request, limits, budget, commands, request, received)
        )
        acceptor = assoc.acceptor
        acceptor.maximum_length = self.ae.maximum_pdu_size
        acceptor.ae_title = server.ae_title
        acceptor.address_info = self.local
        acceptor.implementation_class_uid = self.ae.implementation_class_uid
        acceptor.implementation_version_name = self.ae.implementation_version_name
        acceptor.supported_contexts = server.contexts
        assoc.requestor.address_info = self.remote
        pool_server = cast(_PoolServer, server)
        engine = pool_server.engine
        assoc.dul_runner = pool_server.dul_pool  # type: ignore[attr-defined]
        cast(EventDIMSE, assoc.dimse).on_cancel = engine.stats.cancel_received
        # Our handlers only: the association has bound pynetdicom's defaults itself.
        for handler in engine.handlers():
            assoc.bind(handler[0], handler[1])
        return assoc


class PynetdicomEngine:
    """Serves the QueryService through pynetdicom's AE."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.stats = ctx.stats
        self.lifecycle = Lifecycle(ctx.stats, ctx.access)
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._records: dict[Association, AssociationRecord] = {}  # open connections
        self._changed = threading.Condition()  # guards _records, _admitted; notified as they end
        self._admitted = 0  # associations handed to the pool and not yet ended
        self.budget = ReceiveBudget()
        self.commands = CommandScreen()
        self.stopping = False
        self.policy = AcceptorPolicy(
            ae_title=self.settings.ae_title,
            accept_any_called_ae=self.settings.accept_any_called_ae,
            max_pdu_length=self.settings.max_pdu_size or MAX_PDU_UNBOUNDED,
        )
        silence_pynetdicom()
        pynetdicom_rpi.install()
        pynetdicom_reactors.install()

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
        ae.maximum_associations = MAX_ASSOCIATIONS_UNCHECKED
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
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_RELEASED, self._on_released),
            (evt.EVT_ABORTED, self._on_aborted),
        ]

    # -- serving ----------------------------------------------------------------------

    async def serve(self, on_ready: Callable[[tuple[str, int]], None], stop: asyncio.Event) -> None:
        ae = self.make_ae()
        s = self.settings
        server = _PoolServer(
            self,
            ae,
            (s.host, s.port),
            s.ae_title,
            ae.supported_contexts,
            None,  # TLS is the Acceptor's
            self.handlers(),
            _Handler,
        )
        assert server.socket is not None
        acceptor = Acceptor(
            server.socket,
            self.lifecycle,
            self.budget,
            acse_timeout=s.acse_timeout,
            ssl_context=self.ctx.ssl_context,
            screen=self.screen,
            hand_off=lambda *args: server.pool.submit(self.serve_connection, server, *args),
        )
        thread = threading.Thread(target=acceptor.run, name="rpi-async-acceptor", daemon=True)
        async with anyio.from_thread.BlockingPortal() as portal:
            self._portal = portal
            thread.start()
            host, port = server.server_address[:2]
            on_ready((str(host), int(port)))
            try:
                await stop.wait()
            finally:
                await anyio.to_thread.run_sync(self._shutdown, server, acceptor, thread)
                self._portal = None

    def screen(self, rq: AAssociateRQ, record: AssociationRecord) -> AAssociateRJ | None:
        """In the acceptor thread: the A-ASSOCIATE-RJ for ``rq``, or None to accept it.
        AE title, access policy and limits as the native engine decides them
        (``Lifecycle.admit``, ``ul.negotiate``); at shutdown, rejected-transient."""
        refusal = self.lifecycle.admit(record, rq.calling_ae_title)
        with self._changed:
            over = self.stopping or self._admitted >= self.settings.max_associations
        negotiation = negotiate(
            rq,
            self.policy,
            over_capacity=over or refusal is Refusal.PEER_LIMIT,
            calling_ae_refused=refusal is Refusal.CALLING_AE_NOT_RECOGNIZED,
        )
        reply = negotiation.reply
        if isinstance(reply, AAssociateRJ):
            peer_limit = refusal is Refusal.PEER_LIMIT and (reply.source, reply.reason) == (
                LOCAL_LIMIT_REPLY[1],
                LOCAL_LIMIT_REPLY[2],
            )
            self.lifecycle.rejected(record, reply.source, reply.reason, peer_limit=peer_limit)
            return reply
        with self._changed:
            self._admitted += 1
        return None

    def serve_connection(
        self,
        server: _PoolServer,
        sock: socket.socket,
        client_address: tuple[str, int],
        record: AssociationRecord,
        request: bytes,
        received: bytes,
    ) -> None:
        """In a pool thread: the whole association: its A-ASSOCIATE-RQ, the bytes
        ``received`` after it, then the connection."""
        s = self.settings
        limits = ReceiveLimits(s.max_pdu_size, MAX_MESSAGE_LENGTH, s.dimse_timeout)
        association: Association | None = None
        try:
            handler = _Handler(sock, client_address, server)
            association = handler.create(limits, self.budget, self.commands, request, received)
            with self._changed:
                self._records[association] = record
            evt.trigger(association, evt.EVT_CONN_OPEN, {"address": client_address})
            association.run()  # the reactor, in this thread, until the association ends
        except Exception as exc:
            log.warning("connection from %s failed: %s", client_address[0], type(exc).__name__)
            log.debug("connection from %s failed", client_address[0], exc_info=True)
            server.shutdown_request(sock)
        finally:
            with self._changed:
                self._admitted -= 1
                if association is not None:
                    self._records.pop(association, None)
                self._changed.notify_all()
            self.lifecycle.closed(record)

    def _shutdown(self, server: _PoolServer, acceptor: Acceptor, thread: threading.Thread) -> None:
        """Abort idle associations now, let busy ones finish within the grace period,
        meanwhile refuse every request (rejected-transient: ``screen``) from connections
        already accepted or still in the listen queue; then stop accepting."""
        self.stopping = True
        deadline = time.monotonic() + self.settings.shutdown_grace
        with self._changed:  # those still negotiating are about to be accepted: they wait
            idle = [(a, r) for a, r in self._records.items() if _idle(a, r)]
        for association, record in idle:
            self._abort_for_shutdown(association, record)
        with self._changed:  # the others: until their peers release, or the grace is over
            self._changed.wait_for(
                lambda: not self._admitted, max(0.0, deadline - time.monotonic())
            )
            late = list(self._records.items())
        for association, record in late:
            self._abort_for_shutdown(association, record)
        with self._changed:
            self._changed.wait_for(lambda: not self._admitted, SHUTDOWN_ABORT_WAIT)
        acceptor.stop()
        thread.join()
        server.server_close()  # closes the listening socket
        server.pool.shutdown(wait=False)
        server.dul_pool.shutdown(wait=False)

    def _abort_for_shutdown(self, association: Association, record: AssociationRecord) -> None:
        if record.outcome.final:
            return  # released or aborted already: its thread is ending
        if record.busy:
            log.warning("aborting association still busy at shutdown")
        detail = "shutdown grace over" if record.busy else "shutdown"
        self.lifecycle.ended(record, Outcome.ABORTED, detail)
        # The A-ABORT goes out here, before the reactor is stopped: pynetdicom's own
        # abort queues it for its DUL, which the stop may end before it is sent.
        # Then the connection is shut, which ends pynetdicom's DUL (Evt17), then its reactor.
        sock: Any = association.dul.socket.socket  # type: ignore[union-attr]
        with contextlib.suppress(OSError, AttributeError):
            sock.sendall(_SHUTDOWN_ABORT)
        with contextlib.suppress(OSError, AttributeError):
            sock.shutdown(socket.SHUT_RDWR)
        association.kill()

    # -- event handlers (pool threads) -----------------------------------------------

    def _record(self, assoc: Association) -> AssociationRecord | None:
        with self._changed:
            return self._records.get(assoc)

    def _on_accepted(self, event: evt.Event) -> None:
        record = self._record(event.assoc)
        if record is not None:
            self.lifecycle.accepted(
                record,
                event.assoc.requestor.ae_title.strip(),
                event.assoc.acceptor.ae_title.strip(),
            )

    def _on_rejected(self, event: evt.Event) -> None:
        record = self._record(event.assoc)
        if record is None or record.outcome is Outcome.REJECTED:
            return
        prim = event.assoc.acceptor.primitive
        record.calling_ae = str(getattr(event.assoc.requestor, "ae_title", "")).strip()
        source = int(getattr(prim, "result_source", 0) or 0)
        reason = int(getattr(prim, "diagnostic", 0) or 0)
        self.lifecycle.rejected(record, source, reason)

    def _on_released(self, event: evt.Event) -> None:
        record = self._record(event.assoc)
        if record is not None:
            self.lifecycle.ended(record, Outcome.RELEASED)

    def _on_aborted(self, event: evt.Event) -> None:
        record = self._record(event.assoc)
        if record is not None:
            detail = getattr(event.assoc.dul.socket, "abort_detail", "")
            if detail:  # GuardedSocket aborted: the A-P-ABORT is ours
                self.lifecycle.ended(record, Outcome.ABORTED, detail)
            else:
                self.lifecycle.ended(record, Outcome.ABORTED_BY_PEER)

    def _on_echo(self, event: evt.Event) -> int:
        self.stats.echo_answered()
        record = self._record(event.assoc)
        if record is not None:
            record.sops.append("verification")
        return int(FindStatus.SUCCESS)

    @pynetdicom_rpi.answer_handler
    def _on_find(self, event: evt.Event) -> Answer:
        assoc = event.assoc
        request = cast(C_FIND, event.request)
        sop_uid = str(request.AffectedSOPClassUID)
        record = self._record(assoc)
        identifier = request.Identifier
        data = identifier.getvalue() if identifier is not None else None
        peer = Peer(assoc.requestor.ae_title.strip(), assoc.requestor.address, assoc.requestor.port)
        if record is not None:
            record.sops.append(SOP_NAMES.get(sop_uid, "unknown"))
            record.busy = True
        try:
            answer = self._run_find(
                data, str(event.context.transfer_syntax), sop_uid, peer, lambda: event.is_cancelled
            )
        finally:
            if record is not None:
                with self._changed:
                    record.busy = False
                    self._changed.notify_all()
        if record is not None:
            record.statuses.append(int(answer.status))
            if answer.status is FindStatus.PENDING:
                record.statuses.append(int(FindStatus.SUCCESS))
        return answer

    def _run_find(
        self,
        data: bytes | None,
        transfer_syntax: str,
        sop_uid: str,
        peer: Peer,
        is_cancelled: Callable[[], bool],
    ) -> Answer:
        portal = self._portal
        if portal is None:
            return rules.failure(FindStatus.OUT_OF_RESOURCES, rules.STOPPING)
        find = functools.partial(
            self.service.find, data, transfer_syntax, sop_uid, peer, is_cancelled=is_cancelled
        )
        try:
            future = portal.start_task_soon(find)
            # The service answers A700 itself at query_timeout; this is the backstop.
            return future.result(self.settings.query_timeout + 1.0)
        except FutureTimeout:
            future.cancel()
            log.warning(
                "query from %s timed out after %.1f s",
                escaped(peer.ae_title),
                self.settings.query_timeout,
            )
            return rules.failure(FindStatus.OUT_OF_RESOURCES, rules.TIMED_OUT)
        except Exception as exc:  # the loop is gone (shutting down)
            log.info("query from %s could not run: %s", escaped(peer.ae_title), type(exc).__name__)
            return rules.failure(FindStatus.OUT_OF_RESOURCES, rules.STOPPING)
