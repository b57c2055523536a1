"""One association on asyncio: a thin adapter between a transport and ``ul.Connection``.

Theory of operation. ``data_received`` feeds bytes to the sans-I/O ``Connection`` and
drains its events. The adapter owns what the core does not: the clock (ARTIM and the
idle timer, both ``loop.call_later`` handles, never polling), the transport (write,
close, flow control) and the application (negotiation policy, the QueryService).

DIMSE requests on one association are served one at a time, in arrival order (the
asynchronous operations window is 1/1). A C-FIND runs as a task so the adapter keeps
reading while it is in flight: a C-CANCEL for it sets a flag the QueryService reads
(FE00 when it arrives before the answer), and a release request waits until the answer
has gone out (PS3.7 §10.1.1.3: a release ends the association only after outstanding
responses). Queued requests beyond ``MAX_QUEUED`` pause reading. A C-CANCEL counts
only for the request in progress or queued; one naming any other Message ID is ignored
(PS3.7 §9.3.2.3).

The adapter sees its engine only through ``ServerState``: the loop, the settings, the
QueryService in use, the shared association bookkeeping (``engines.lifecycle``), the
negotiation and whether the server is stopping (uvicorn's protocol/server-state split).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol, cast

from rpi_async.config import Settings
from rpi_async.dicom.status import FindStatus
from rpi_async.engines.lifecycle import (
    AssociationRecord,
    Charge,
    Lifecycle,
    Outcome,
    ReceiveBudget,
    escaped,
)
from rpi_async.service.monitor import Peer
from rpi_async.service.query import SOP_NAMES, QueryService
from rpi_async.ul import (
    NEED_DATA,
    Aborted,
    AssociationRequested,
    Connection,
    ConnectionClosed,
    DimseMessage,
    LocalProtocolError,
    ProtocolAborted,
    ReleaseConfirmed,
    ReleaseRequested,
    TimerRequest,
)
from rpi_async.ul.codes import AbortReason, AbortSource
from rpi_async.ul.commands import (
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CFindRQ,
    CFindRSP,
    DimseCommand,
    is_uid,
)
from rpi_async.ul.negotiation import Negotiation
from rpi_async.ul.pdu import AAssociateAC, AAssociateRQ, RequestCache
from rpi_async.ul.proxy import ProxyProtocolError, ProxyReader

log = logging.getLogger("rpi_async.ul")

MAX_QUEUED = 8
SOP_CLASS_NOT_SUPPORTED = 0x0122  # PS3.7 C.4.1.1.4: a C-FIND on another context's SOP class


class ServerState(Protocol):
    """What an ``AssociationProtocol`` needs of its engine (``NativeEngine``)."""

    settings: Settings
    lifecycle: Lifecycle
    budget: ReceiveBudget
    stopping: bool
    max_message_length: int
    requests: RequestCache  # decoded A-ASSOCIATE-RQs, shared by every connection

    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...

    @property
    def service(self) -> QueryService: ...

    def negotiate(self, rq: AAssociateRQ, record: AssociationRecord) -> Negotiation: ...

    def connection_opened(self, protocol: AssociationProtocol) -> bool: ...

    def request_answered(self, protocol: AssociationProtocol) -> None: ...

    def connection_closed(self, protocol: AssociationProtocol) -> None: ...


class AssociationProtocol(asyncio.Protocol):
    """Adapter for one TCP connection on which we are the association acceptor."""

    def __init__(self, engine: ServerState) -> None:
        self.engine = engine
        self.conn = Connection(
            max_message_length=engine.max_message_length, requests=engine.requests
        )
        self.transport: asyncio.Transport | None = None
        self.record = AssociationRecord("", 0, 0.0)
        self.peer = Peer("", "", 0)
        self.closed: asyncio.Future[None] = engine.loop.create_future()
        self._queue: deque[DimseMessage | ReleaseRequested] = deque()
        self._busy = False  # a request is being served
        self._cancel_for: set[int] = set()  # message ids a C-CANCEL named
        self._current: int | None = None  # message id of the request in progress
        self._artim: asyncio.TimerHandle | None = None
        self._idle: asyncio.TimerHandle | None = None
        self._incomplete: asyncio.TimerHandle | None = None  # completion deadline
        self._pdu_started: float | None = None  # first byte of the PDU being received
        self._message_started: float | None = None  # first PDU of the message in progress
        self._pdus_seen = 0
        self._message_done = False
        self.charge = Charge()  # this connection's share of the engine's ReceiveBudget
        self._last_activity = 0.0
        self._established = False
        self._reading_paused = False
        self._writing_paused = False
        self._proxy: ProxyReader | None = None  # a PROXY protocol header still to read

    # -- transport callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        # TCP_NODELAY: uvloop and asyncio set it on every accepted TCP socket already.
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer = Peer("", str(peer[0]), int(peer[1]))
        self.record = self.engine.lifecycle.opened(str(peer[0]), int(peer[1]))
        self.conn.connection_made()
        if not self.engine.connection_opened(self):
            log.info("%s has too many connections without a request: closing", self.peer.address)
            self._set_outcome(Outcome.ABORTED, "too many connections without a request")
            self.transport.close()
            return
        self._apply_timer()
        self._touch()
        if self.engine.settings.proxy_protocol:
            self._proxy = ProxyReader(self.peer.address, self.engine.settings.trusted_proxies)
            if not self._proxy.trusted:
                self._proxy_header(b"")

    def data_received(self, data: bytes) -> None:
        self._touch()
        if self._proxy is not None and not (data := self._proxy_header(data)):
            return
        self.conn.receive_data(data)
        self._pump()
        if not self.engine.budget.charge(self.charge, self.conn.held_bytes):
            log.info(
                "receive budget exhausted: aborting the association from %s", self.peer.address
            )
            self._abort("receive budget exhausted")
            return
        self._watch_completion()

    def _proxy_header(self, data: bytes) -> bytes:
        """PROXY protocol: take the client's address from the balancer's header; the
        bytes after it are DICOM. A connection without a valid header is dropped."""
        assert self._proxy is not None
        try:
            found = self._proxy.feed(data)
        except ProxyProtocolError as exc:
            self._proxy = None
            log.info("connection from %s dropped: %s", self.peer.address, exc)
            self._abort(f"PROXY protocol: {exc}")
            return b""
        if found is None:
            return b""
        self._proxy = None
        header, rest = found
        if header.source is not None:  # None: the balancer's own connection (LOCAL)
            self.peer = Peer("", *header.source)
            self.record.address, self.record.port = header.source
        return rest

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.conn.connection_lost()
        self._pump()
        self._finish()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._serve_next()

    # -- events from the protocol core ------------------------------------------------

    def _pump(self) -> None:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is NEED_DATA:
                break
            if isinstance(event, DimseMessage):
                self._on_message(event)
            elif isinstance(event, AssociationRequested):
                self._on_request(event)
            elif isinstance(event, ReleaseRequested):
                self._queue.append(event)
                self._serve_next()
            elif isinstance(event, ProtocolAborted):
                log.info("protocol error from %s: %s", self.peer.address, escaped(event.detail))
                self._set_outcome(Outcome.ABORTED, f"protocol error: {event.detail}")
                self._write(event.data_to_send)
            elif isinstance(event, Aborted):
                self._set_outcome(Outcome.ABORTED_BY_PEER)
            elif isinstance(event, ReleaseConfirmed):  # pragma: no cover - we never request
                pass
            elif isinstance(event, ConnectionClosed):
                break
            self._after_call()
        self._after_call()  # a PDU that closes without an indication (AA-2 in Sta2, Sta13)
        if len(self._queue) > MAX_QUEUED and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()

    def _on_request(self, event: AssociationRequested) -> None:
        rq = event.request
        self.peer = Peer(rq.calling_ae_title, self.peer.address, self.peer.port)
        # Access policy and limits; the lifecycle counts the outcome before the answer
        # leaves (a peer that has it may already read the stats).
        negotiation = self.engine.negotiate(rq, self.record)
        data = self.conn.respond(negotiation.reply)
        self._established = isinstance(negotiation.reply, AAssociateAC)
        self.engine.request_answered(self)
        self._write(data)

    def _on_message(self, event: DimseMessage) -> None:
        self._message_done = True
        command = event.command
        if isinstance(command, CCancelRQ):
            self.engine.lifecycle.stats.cancel_received()
            target = command.message_id_being_responded_to
            if target == self._current or any(
                isinstance(q, DimseMessage)
                and isinstance(q.command, CFindRQ)
                and q.command.message_id == target
                for q in self._queue
            ):
                self._cancel_for.add(target)
            return
        self._queue.append(event)
        self._serve_next()

    # -- serving requests, one at a time ------------------------------------------

    def _serve_next(self) -> None:
        while not self._busy and self._queue and not self._writing_paused:
            item = self._queue.popleft()
            if isinstance(item, ReleaseRequested):
                try:
                    data = self.conn.release_response()
                except LocalProtocolError:
                    continue  # aborted meanwhile
                self._set_outcome(Outcome.RELEASED)
                self._write(data)
                self._after_call()
                continue
            self._serve_message(item)
        if self._reading_paused and len(self._queue) <= MAX_QUEUED // 2 and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()

    def _serve_message(self, event: DimseMessage) -> None:
        command = event.command
        if isinstance(command, CFindRQ):
            self._busy = True
            self.record.busy = True
            self._current = command.message_id
            self.record.sops.append(SOP_NAMES.get(command.affected_sop_class_uid, "unknown"))
            task = self.engine.loop.create_task(self._find(event, command))
            task.add_done_callback(self._find_done)
        elif isinstance(command, CEchoRQ):
            self.engine.lifecycle.stats.echo_answered()
            self.record.sops.append("verification")
            self._send(event.context_id, CEchoRSP(command.message_id, 0), None)
        else:
            # Only C-FIND, C-CANCEL and C-ECHO exist on the contexts we accept.
            log.info("unsupported DIMSE command from %s: aborting", self.peer.address)
            self._abort()

    async def _find(self, event: DimseMessage, command: CFindRQ) -> None:
        context = self.conn.accepted_contexts.get(event.context_id)
        sop = command.affected_sop_class_uid
        message_id = command.message_id
        if context is not None and context.abstract_syntax != sop:
            # A UID that cannot go back on the wire is answered with the context's.
            named = sop if is_uid(sop) else context.abstract_syntax
            self._send(event.context_id, CFindRSP(message_id, named, SOP_CLASS_NOT_SUPPORTED), None)
            self.record.statuses.append(SOP_CLASS_NOT_SUPPORTED)
            return

        def is_cancelled() -> bool:
            return message_id in self._cancel_for

        # The service reads the identifier in the context's transfer syntax and answers
        # with the response identifier already encoded in it.
        answer = await self.engine.service.find(
            event.dataset if context is not None else None,
            context.transfer_syntax if context is not None else "",
            sop,
            self.peer,
            is_cancelled=is_cancelled,
        )
        self._cancel_for.discard(message_id)
        if answer.status is FindStatus.PENDING and answer.identifier is not None:
            # The match and the final Success in one write: one segment, one system call.
            pending = CFindRSP(message_id, sop, FindStatus.PENDING)
            final = CFindRSP(message_id, sop, FindStatus.SUCCESS)
            self._send_all(event.context_id, ((pending, answer.identifier), (final, None)))
            self.record.statuses += (FindStatus.PENDING, FindStatus.SUCCESS)
        else:
            rsp = CFindRSP(
                message_id,
                sop,
                int(answer.status),
                answer.offending_elements,
                answer.error_comment[:64] if answer.error_comment else None,
            )
            self._send(event.context_id, rsp, None)
            self.record.statuses.append(int(answer.status))

    def _find_done(self, task: asyncio.Task[None]) -> None:
        self._busy = False
        self.record.busy = False
        self._current = None
        if not task.cancelled() and task.exception() is not None:
            log.error("query handling failed: %s", type(task.exception()).__name__)
            self._abort()
            return
        self._serve_next()

    # -- output ----------------------------------------------------------------------

    def _send(self, context_id: int, command: DimseCommand, dataset: bytes | None) -> None:
        self._send_all(context_id, ((command, dataset),))

    def _send_all(
        self, context_id: int, messages: tuple[tuple[DimseCommand, bytes | None], ...]
    ) -> None:
        """DIMSE messages in order, written together."""
        if not self.conn.can_send:
            return  # the peer aborted or the transport went away meanwhile
        send = self.conn.send_message
        data = b"".join([send(context_id, command, dataset) for command, dataset in messages])
        self._write(data)
        self._after_call()

    def _write(self, data: bytes) -> None:
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _after_call(self) -> None:
        self._apply_timer()
        if self.conn.should_close and self.transport is not None:
            self.transport.close()

    def _abort(self, detail: str = "") -> None:
        if self.conn.is_established:
            self._write(self.conn.abort(AbortSource.SERVICE_PROVIDER, AbortReason.NOT_SPECIFIED))
        self._set_outcome(Outcome.ABORTED, detail)
        if self.transport is not None:
            self.transport.close()

    def end_if_idle(self) -> None:
        """At shutdown: end this association now unless an operation is in progress. A
        connection still to send its request is left to get its refusal (the engine
        rejects every request once stopping), one already answered to close."""
        if self.conn.is_established and not self._busy and not self._queue:
            self._abort("shutdown")

    def abort_for_shutdown(self) -> None:
        if self._busy or self._queue:
            log.warning("aborting association still busy at shutdown")
            self._abort("shutdown grace over")
        else:
            self._abort("shutdown")

    # -- timers ------------------------------------------------------------------------

    def _apply_timer(self) -> None:
        request = self.conn.take_timer_request()
        if request is TimerRequest.START_ARTIM:
            if self._artim is not None:
                self._artim.cancel()
            self._artim = self.engine.loop.call_later(
                self.engine.settings.acse_timeout, self._artim_expired
            )
        elif request is TimerRequest.STOP_ARTIM and self._artim is not None:
            self._artim.cancel()
            self._artim = None

    def _artim_expired(self) -> None:
        self._artim = None
        self._write(self.conn.artim_expired())
        if not self._established:
            self._set_outcome(Outcome.TIMED_OUT, "ARTIM")
        self._after_call()
        if self.transport is not None and not self.conn.artim_running:
            self.transport.close()

    def _touch(self) -> None:
        self._last_activity = self.engine.loop.time()
        if self._idle is None:
            self._idle = self.engine.loop.call_at(
                self._last_activity + self.engine.settings.network_timeout, self._idle_check
            )

    def _idle_check(self) -> None:
        """The idle timer fires at most once per timeout; re-armed for the remainder."""
        deadline = self._last_activity + self.engine.settings.network_timeout
        if self._busy or deadline > self.engine.loop.time():
            self._idle = self.engine.loop.call_at(
                max(deadline, self.engine.loop.time() + 0.001), self._idle_check
            )
            return
        self._idle = None
        log.info("association from %s idle: aborting", self.peer.address)
        self._abort("idle")

    def _watch_completion(self) -> None:
        """Arm the completion deadline: a PDU must be complete within ``dimse_timeout``
        of its first byte, a DIMSE message within it of its first PDU, whatever the
        trickle (ARTIM covers the A-ASSOCIATE-RQ)."""
        conn, loop = self.conn, self.engine.loop
        now = loop.time()
        if not self._established or not conn.buffered_bytes:
            self._pdu_started = None
        elif self._pdu_started is None or conn.pdus_received != self._pdus_seen:
            self._pdu_started = now
        self._pdus_seen = conn.pdus_received
        if not self._established or not conn.assembling:
            self._message_started = None
        elif self._message_started is None or self._message_done:
            self._message_started = now
        self._message_done = False
        starts = [t for t in (self._pdu_started, self._message_started) if t is not None]
        if not starts:
            if self._incomplete is not None:
                self._incomplete.cancel()
                self._incomplete = None
            return
        deadline = min(starts) + self.engine.settings.dimse_timeout
        if self._incomplete is None or self._incomplete.when() != deadline:
            if self._incomplete is not None:
                self._incomplete.cancel()
            self._incomplete = loop.call_at(deadline, self._completion_expired)

    def _completion_expired(self) -> None:
        self._incomplete = None
        if self._reading_paused:  # our flow control holds the rest back, not the peer
            self._incomplete = self.engine.loop.call_later(
                self.engine.settings.dimse_timeout, self._completion_expired
            )
            return
        timeout = self.engine.settings.dimse_timeout
        log.info("incomplete PDU from %s after %g s: aborting", self.peer.address, timeout)
        self._abort(f"PDU incomplete after {timeout:g} s")

    # -- end ---------------------------------------------------------------------------

    def _set_outcome(self, outcome: Outcome, detail: str = "") -> None:
        self.engine.lifecycle.ended(self.record, outcome, detail)

    def _finish(self) -> None:
        for handle in (self._artim, self._idle, self._incomplete):
            if handle is not None:
                handle.cancel()
        self._artim = self._idle = self._incomplete = None
        self.engine.budget.charge(self.charge, 0)
        self.engine.lifecycle.closed(self.record)
        self.engine.connection_closed(self)
        if not self.closed.done():
            self.closed.set_result(None)
