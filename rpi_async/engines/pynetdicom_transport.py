"""The pynetdicom engine's socket layer: ours, so slow or hostile peers cost it nothing.

Theory of operation. pynetdicom reads a PDU by blocking in ``recv()`` until the length
its header announces has arrived, buffers whatever that length is, and runs ARTIM only
in a reactor that the blocked read stops. Two pieces replace that:

- ``Acceptor`` (one thread) accepts connections and reads each one's A-ASSOCIATE-RQ
  with a selector, driving the sans-I/O ``ul.Connection`` through Sta2 exactly as the
  native engine does: the request must be complete within ARTIM (``acse_timeout``,
  PS3.8 §9.1.5: AA-2, close), its length is refused from the header alone when over
  the limit, and a malformed or unexpected PDU gets the A-ABORT the state table gives
  (PS3.8 Table 9-10; an A-ABORT from the peer closes silently, AA-2/AA-3). A complete
  request is screened by the engine (AE title, access policy, limits, ``ul.negotiate``'s
  rejections); an A-ASSOCIATE-RJ is sent from here, an acceptable request is re-encoded
  by ``ul.pdu`` (normalised: AE titles without padding, protocol version 1, unknown
  items dropped, PS3.8 §9.3.1) and handed with the connection to a pool thread. No pool
  thread ever waits for a peer that has not finished its request. Connections waiting
  for their request are bounded in number, in total and per peer address; beyond that
  new ones are closed at once. TLS handshakes run here too, without blocking.
- ``GuardedSocket`` (pynetdicom's ``AssociationSocket``, subclassed) serves the
  association's later PDUs to pynetdicom's DUL only once each is complete: ``ready``
  reads what has arrived without blocking, ``recv`` hands out a complete PDU. Each PDU
  is checked by ``ul.pdu.read_pdu`` first (length against ``max_pdu_size`` before the
  body is buffered, every field decoded), must be complete within ``dimse_timeout`` of
  its first byte, and a DIMSE message must be complete within ``dimse_timeout`` of its
  first fragment and below ``max_message_length``; otherwise A-ABORT (source service
  provider, PS3.8 Table 9-26 reason) and the connection ends.
"""

from __future__ import annotations

import contextlib
import logging
import select
import selectors
import socket
import ssl
import struct
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from io import BytesIO
from typing import TYPE_CHECKING

from pydicom.datadict import dictionary_has_tag
from pynetdicom.dimse_messages import _MESSAGE_TYPES
from pynetdicom.dsutils import decode
from pynetdicom.transport import AssociationSocket

from rpi_async.engines.lifecycle import (
    MAX_UNASSOCIATED,
    MAX_UNASSOCIATED_PER_PEER,
    AssociationRecord,
    Charge,
    Lifecycle,
    Outcome,
    ReceiveBudget,
    escaped,
    refuse_new_connections,
)
from rpi_async.ul import (
    NEED_DATA,
    Aborted,
    AssociationRequested,
    Connection,
    ConnectionClosed,
    ProtocolAborted,
)
from rpi_async.ul.codes import PROTOCOL_VERSION_1, AbortReason, AbortSource
from rpi_async.ul.commands import CCancelRQ, CEchoRQ, CFindRQ, is_uid
from rpi_async.ul.connection import (
    ASSUMED_PEER_MAX_PDU_LENGTH,
    DEFAULT_MAX_ASSOCIATE_PDU_LENGTH,
    UNBOUNDED_RECEIVE_CAP,
)
from rpi_async.ul.dimse import MessageAssembler
from rpi_async.ul.errors import RemoteProtocolError
from rpi_async.ul.events import DimseMessage
from rpi_async.ul.fsm import State
from rpi_async.ul.pdu import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    PDataTF,
    RequestCache,
    read_pdu,
    write_pdu,
)

if TYPE_CHECKING:
    from pynetdicom.association import Association

log = logging.getLogger("rpi_async.ul")

_READ_SIZE = 65536
QUEUED_REFUSAL_WAIT = 2.0  # at shutdown, for the listen queue's requests to be refused

Screen = Callable[[AAssociateRQ, AssociationRecord], AAssociateRJ | None]
# (connection, peer address, record, the A-ASSOCIATE-RQ to serve, bytes received after it)
HandOff = Callable[[socket.socket, tuple[str, int], AssociationRecord, bytes, bytes], object]


@dataclass(eq=False)
class _Pending:
    """A connection whose A-ASSOCIATE-RQ is being read."""

    sock: socket.socket
    address: tuple[str, int]
    record: AssociationRecord
    deadline: float
    conn: Connection
    received: bytearray = field(default_factory=bytearray)
    charge: Charge = field(default_factory=Charge)
    handshaking: bool = False


class Acceptor:
    """Accepts connections and reads their A-ASSOCIATE-RQ; run in one thread."""

    def __init__(
        self,
        listener: socket.socket,
        lifecycle: Lifecycle,
        budget: ReceiveBudget,
        *,
        acse_timeout: float,
        ssl_context: ssl.SSLContext | None,
        screen: Screen,
        hand_off: HandOff,
    ) -> None:
        self.listener = listener
        self.lifecycle = lifecycle
        self.budget = budget
        self.acse_timeout = acse_timeout
        self.ssl_context = ssl_context
        self.screen = screen
        self.hand_off = hand_off
        self.requests = RequestCache()  # a peer's same request decoded once
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._pending: dict[socket.socket, _Pending] = {}
        self._per_peer: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._listening = False

    def stop(self) -> None:
        """From any thread: ``run`` returns soon, closing every connection still pending."""
        self._stopping.set()
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def run(self) -> None:
        self.listener.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._listen(True)
        try:
            while not self._stopping.is_set():
                self._turn()
            # Stopping: the listen queue is accepted, not reset; its requests (and those
            # of connections pending already) get their refusal from ``screen``, within
            # QUEUED_REFUSAL_WAIT; the listener closes first, so later ones are refused
            # at connect.
            refuse_new_connections(self.listener)  # a SYN now: dropped, retried, refused
            self._accept(limit=False)
            self._listen(False)
            self.listener.close()
            deadline = time.monotonic() + QUEUED_REFUSAL_WAIT
            while self._pending and time.monotonic() < deadline:
                self._turn(deadline)
        finally:
            for pending in list(self._pending.values()):
                self.lifecycle.ended(pending.record, Outcome.ABORTED, "shutdown")
                self._close(pending)
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _turn(self, until: float | None = None) -> None:
        """One selector wait: accept, read, expire."""
        deadlines = [p.deadline for p in self._pending.values()]
        if until is not None:
            deadlines.append(until)
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self.listener:
                self._accept()
            elif isinstance(key.data, _Pending):
                self._read(key.data)
            elif key.fileobj is self._wake_r:
                with contextlib.suppress(OSError):
                    self._wake_r.recv(64)
        self._expire()

    def _listen(self, on: bool) -> None:
        if on and not self._listening:
            self._selector.register(self.listener, selectors.EVENT_READ, None)
        elif not on and self._listening:
            self._selector.unregister(self.listener)
        self._listening = on

    def _accept(self, *, limit: bool = True) -> None:
        while not limit or len(self._pending) < MAX_UNASSOCIATED:
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # out of descriptors, for one: the backlog waits
                log.warning("accept failed: %s", exc)
                return
            host, port = str(address[0]), int(address[1])
            if limit and self._per_peer[host] >= MAX_UNASSOCIATED_PER_PEER:
                log.info("%s has too many connections without a request: closing", host)
                sock.close()
                continue
            self._open(sock, (host, port))
        self._listen(False)  # full: the rest wait in the listen backlog

    def _open(self, sock: socket.socket, address: tuple[str, int]) -> None:
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        record = self.lifecycle.opened(*address)
        pending = _Pending(
            sock,
            address,
            record,
            time.monotonic() + self.acse_timeout,
            Connection(requests=self.requests),
        )
        if self.ssl_context is not None:
            try:
                pending.sock = self.ssl_context.wrap_socket(
                    sock, server_side=True, do_handshake_on_connect=False
                )
            except (OSError, ValueError) as exc:
                log.info("TLS with %s failed: %s", address[0], exc)
                sock.close()
                self.lifecycle.closed(record)
                return
            pending.handshaking = True
        pending.conn.connection_made()
        self._pending[pending.sock] = pending
        self._per_peer[address[0]] += 1
        self._selector.register(pending.sock, selectors.EVENT_READ, pending)

    def _read(self, pending: _Pending) -> None:
        sock = pending.sock
        if pending.handshaking:
            assert isinstance(sock, ssl.SSLSocket)
            try:
                sock.do_handshake()
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return
            except (OSError, ValueError) as exc:
                log.info("TLS handshake with %s failed: %s", pending.address[0], exc)
                self._close(pending)
                return
            pending.handshaking = False
        try:
            data = sock.recv(_READ_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError:
            data = b""
        if data and pending.conn.state is not State.STA2:
            pending.conn.receive_data(data)  # Sta13 after our A-ABORT: read, not kept
        elif data:
            if not self.budget.charge(pending.charge, len(pending.received) + len(data)):
                log.info("receive budget exhausted: closing %s", pending.address[0])
                self.lifecycle.ended(pending.record, Outcome.ABORTED, "receive budget exhausted")
                self._close(pending)
                return
            pending.received += data
            pending.conn.receive_data(data)
        else:
            pending.conn.connection_lost()
        self._pump(pending)

    def _pump(self, pending: _Pending) -> None:
        conn = pending.conn
        while (event := conn.next_event()) is not NEED_DATA:
            if isinstance(event, AssociationRequested):
                self._requested(pending, event.request)
                return
            if isinstance(event, ProtocolAborted):
                log.info("protocol error from %s: %s", pending.address[0], escaped(event.detail))
                self.lifecycle.ended(
                    pending.record, Outcome.ABORTED, f"protocol error: {event.detail}"
                )
                self._send(pending, event.data_to_send)
            elif isinstance(event, Aborted):
                self.lifecycle.ended(pending.record, Outcome.ABORTED_BY_PEER)
            if isinstance(event, ConnectionClosed) or conn.should_close:
                self._close(pending)
                return

    def _requested(self, pending: _Pending, rq: AAssociateRQ) -> None:
        rejection = self.screen(rq, pending.record)
        if rejection is not None:
            self._send(pending, pending.conn.reject(rejection))
            self._close(pending)
            return
        leftover = pending.conn.buffered_bytes
        tail = bytes(pending.received[len(pending.received) - leftover :]) if leftover else b""
        request = write_pdu(for_pynetdicom(rq))
        self._forget(pending)
        pending.sock.setblocking(True)
        self.hand_off(pending.sock, pending.address, pending.record, request, tail)

    def _expire(self) -> None:
        now = time.monotonic()
        for pending in [p for p in self._pending.values() if p.deadline <= now]:
            log.info("no A-ASSOCIATE-RQ from %s within ARTIM: closing", pending.address[0])
            self.lifecycle.ended(pending.record, Outcome.TIMED_OUT, "ARTIM")
            self._close(pending)

    def _send(self, pending: _Pending, data: bytes) -> None:
        if not data:
            return
        try:
            pending.sock.setblocking(True)
            pending.sock.settimeout(1.0)  # a short PDU; a peer that does not read loses it
            pending.sock.sendall(data)
        except OSError:
            pass

    def _forget(self, pending: _Pending) -> None:
        self.budget.charge(pending.charge, 0)
        del self._pending[pending.sock]
        self._selector.unregister(pending.sock)
        host = pending.address[0]
        self._per_peer[host] -= 1
        if self._per_peer[host] <= 0:
            del self._per_peer[host]
        if not self._stopping.is_set():
            self._listen(True)

    def _close(self, pending: _Pending) -> None:
        self._forget(pending)
        with contextlib.suppress(OSError):
            pending.sock.close()
        self.lifecycle.closed(pending.record)


def for_pynetdicom(rq: AAssociateRQ) -> AAssociateRQ:
    """The request as pynetdicom is given it: what ``ul.pdu`` read, in terms pynetdicom
    neither refuses nor logs as errors. Protocol version 1 (PS3.8 §9.3.2: only bit 0 is
    defined; pynetdicom refuses other values), a missing maximum length taken as the
    native engine takes it (PS3.8 Annex D.1 makes it mandatory), unknown items and the extended
    negotiations we do not support dropped (§9.3.1), and a UID that is not one (bytes
    outside digits and dots) replaced by one nobody supports, so that its context is
    refused as the native engine refuses it instead of failing pynetdicom's decoder."""
    info = rq.user_information
    return replace(
        rq,
        protocol_version=PROTOCOL_VERSION_1,
        presentation_contexts=tuple(
            replace(
                cx,
                abstract_syntax=_uid(cx.abstract_syntax),
                transfer_syntaxes=tuple(map(_uid, cx.transfer_syntaxes)),
            )
            for cx in rq.presentation_contexts
        ),
        user_information=replace(
            info,
            max_length=ASSUMED_PEER_MAX_PDU_LENGTH if info.max_length is None else info.max_length,
            implementation_class_uid=_uid(info.implementation_class_uid or UNKNOWN_UID),
            implementation_version_name=None,
            role_selections=tuple(
                replace(r, sop_class_uid=_uid(r.sop_class_uid)) for r in info.role_selections
            ),
            sop_class_extended=(),
            sop_class_common_extended=(),
            unknown=(),
        ),
    )


UNKNOWN_UID = "0"  # stands for a value that is not a UID: matches nothing we support


def _uid(text: str) -> str:
    return text if is_uid(text) else UNKNOWN_UID


@dataclass(frozen=True, slots=True)
class ReceiveLimits:
    """What ``GuardedSocket`` allows a peer: sizes in bytes, times in seconds."""

    max_pdu_length: int  # P-DATA-TF, as our A-ASSOCIATE-AC announced (0: none)
    max_message_length: int
    completion_timeout: float  # for a PDU from its first byte, a message from its first PDU


class GuardedSocket(AssociationSocket):
    """pynetdicom's socket, fed only complete, checked PDUs (see the module docstring)."""

    def __init__(
        self,
        assoc: Association,
        client_socket: socket.socket,
        limits: ReceiveLimits,
        budget: ReceiveBudget,
        commands: CommandScreen,
        request: bytes,
        received: bytes,
    ) -> None:
        super().__init__(assoc, client_socket=client_socket)
        self.budget = budget
        self.commands = commands
        self.charge = Charge()
        client_socket.settimeout(limits.completion_timeout)  # sends cannot block forever
        self.limits = limits
        self._buffer = bytearray(received)
        self._pdu_started = time.monotonic()
        self._message_started: float | None = None
        self._assembler: MessageAssembler | None = None  # from the first P-DATA-TF
        self._command = bytearray()  # the command set being received, raw
        self._complete: bytes | None = request  # the next PDU for pynetdicom
        self.abort_detail = ""  # why we aborted, if we did
        self._peer_closed = 0.0  # when the peer's end of the connection was seen, if it was
        self._pdata_limit = limits.max_pdu_length or UNBOUNDED_RECEIVE_CAP
        self._held_back = False
        self._completed: list[DimseMessage] = []  # by the PDU pynetdicom reads next

    @property
    def holding_input(self) -> bool:
        """Received bytes not yet handed to pynetdicom, or part of a DIMSE message."""
        return bool(self._buffer) or self._complete is not None or self._message_started is not None

    @property
    def has_complete_pdu(self) -> bool:
        """A PDU checked and ready for pynetdicom's next read."""
        return self._complete is not None

    @property
    def holding_back(self) -> bool:
        """A complete PDU received but held until the association is established."""
        return self._held_back

    @property
    def peer_closed(self) -> bool:
        """The peer's end of the connection has been seen closed."""
        return bool(self._peer_closed)

    def take_completed(self) -> list[DimseMessage]:
        """The DIMSE messages completed by the P-DATA-TF pynetdicom has just read,
        decoded (``ul.dimse``), for ``pynetdicom_reactors.EventDIMSE``."""
        completed, self._completed = self._completed, []
        return completed

    @property
    def ready(self) -> bool:
        if self.socket is None or not self._is_connected:
            return False
        if self._complete is None:
            self._fill()
        return self._complete is not None

    def recv(self, nr_bytes: int) -> bytearray:
        """Up to ``nr_bytes`` of the complete PDU ``ready`` found."""
        data = self._complete or b""
        out, rest = data[:nr_bytes], data[nr_bytes:]
        self._complete = rest or None
        return bytearray(out)

    def close(self) -> None:
        """The connection is over (Evt17): its share of the receive budget is given back."""
        self.budget.charge(self.charge, 0)
        super().close()

    def _shutdown_socket(self) -> None:
        """Shut down and close, the close even when the shutdown fails (pynetdicom's
        skips it then: a TLS socket whose peer has gone would stay open)."""
        sock = self.socket
        if sock is None:
            return
        with contextlib.suppress(OSError, ValueError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def _fill(self) -> None:
        sock = self.socket
        assert sock is not None
        if self._buffer:  # PDUs already received go first, even if the peer has closed
            self._frame()
            if self._complete is not None or self.socket is None:
                return
        if _has_input(sock):
            try:
                data: bytes | None = sock.recv(_READ_SIZE)
            except (TimeoutError, ssl.SSLWantReadError):
                data = None
            except OSError:
                data = b""
            if data == b"":
                self._peer_closed = self._peer_closed or time.monotonic()
                if self._negotiated():
                    self.close()  # Evt17 for pynetdicom's state machine
                return
            if data:
                if not self._buffer:
                    self._pdu_started = time.monotonic()
                self._buffer += data
                self._frame()
        if self.socket is None:
            return
        held = len(self._buffer) + (self._assembler.size if self._assembler else 0)
        if not self.budget.charge(self.charge, held):
            self._abort(AbortReason.NOT_SPECIFIED, "receive budget exhausted")
        elif self._complete is None:
            self._check_deadlines()

    def _negotiated(self) -> bool:
        """Whether pynetdicom has answered the request (or given up on the peer closing).

        A peer that closes right after its request must not be reported before then:
        pynetdicom's acceptor, told of the close while it negotiates, would wait out
        ``acse_timeout`` on its worker."""
        assoc = self.assoc
        if assoc.is_established or assoc.is_rejected or assoc.is_aborted or assoc._kill:
            return True  # (_kill: the association is being ended, by us)
        return time.monotonic() - self._peer_closed > self.limits.completion_timeout

    def _frame(self) -> None:
        self._held_back = False
        try:
            parsed = read_pdu(
                self._buffer,
                self._pdata_limit,
                max_associate_len=DEFAULT_MAX_ASSOCIATE_PDU_LENGTH,
            )
        except RemoteProtocolError as exc:
            self._abort(exc.reason, str(exc))
            return
        if parsed is None:
            return
        pdu, used = parsed
        if isinstance(pdu, PDataTF) and not self.assoc.is_established:
            self._held_back = True  # sent before our A-ASSOCIATE-AC went out: held until it has
            return
        if isinstance(pdu, _UNEXPECTED_IN_ASSOCIATION):  # PS3.8 Table 9-10: AA-8
            self._abort(AbortReason.UNEXPECTED_PDU, f"unexpected {type(pdu).__name__}")
            return
        if isinstance(pdu, PDataTF) and not self._message_fits(pdu):
            return
        if isinstance(pdu, AAbort) and (pdu.source, pdu.reason) not in _ABORTS_PYNETDICOM_READS:
            self._complete = _PEER_ABORT  # values PS3.8 does not define: an abort all the same
        else:
            self._complete = bytes(self._buffer[:used])
        del self._buffer[:used]
        self._pdu_started = time.monotonic()

    def _message_fits(self, pdu: PDataTF) -> bool:
        """Reassembles the P-DATA's fragments as the native engine does (``ul.dimse``):
        a context not accepted, a message over the size limit, a command set that
        cannot be decoded, or a command other than those the native engine serves, is
        refused (A-ABORT) before pynetdicom sees it; so is a command set holding an
        element pydicom's dictionary does not know, which pynetdicom cannot decode."""
        if self._assembler is None:
            accepted = {int(cx.context_id or 0) for cx in self.assoc.accepted_contexts}
            self._assembler = MessageAssembler(accepted, self.limits.max_message_length)
        try:
            messages = self._assembler.add(pdu.pdvs)
        except RemoteProtocolError as exc:
            self._abort(exc.reason, str(exc))
            return False
        for pdv in pdu.pdvs:
            if pdv.is_command:
                self._command += pdv.data
                if pdv.is_last:
                    why = self.commands.why_unreadable(bytes(self._command))
                    self._command.clear()
                    if why is not None:
                        self._abort(AbortReason.INVALID_PDU_PARAMETER_VALUE, why)
                        return False
        for message in messages:
            if not isinstance(message.command, CFindRQ | CEchoRQ | CCancelRQ):
                name = type(message.command).__name__
                self._abort(AbortReason.NOT_SPECIFIED, f"unsupported DIMSE command {name}")
                return False
        self._completed.extend(messages)
        if not self._assembler.in_progress:
            self._message_started = None
        elif self._message_started is None:
            self._message_started = time.monotonic()
        return True

    def _check_deadlines(self) -> None:
        now = time.monotonic()
        limit = self.limits.completion_timeout
        if self._buffer and now - self._pdu_started > limit:
            self._abort(AbortReason.NOT_SPECIFIED, f"PDU incomplete after {limit:g} s")
        elif self._message_started is not None and now - self._message_started > limit:
            self._abort(AbortReason.NOT_SPECIFIED, f"DIMSE message incomplete after {limit:g} s")

    def _abort(self, reason: AbortReason, detail: str) -> None:
        """A-ABORT (service provider, ``reason``), then the connection ends (Evt17)."""
        log.info("protocol error from %s: %s", self.assoc.requestor.address, escaped(detail))
        self.abort_detail = f"protocol error: {detail}"
        self._buffer.clear()
        sock = self.socket
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.sendall(write_pdu(AAbort(AbortSource.SERVICE_PROVIDER, reason)))
        self.close()


# A-ABORT (source, reason) pairs PS3.8 Table 9-26 defines, which pynetdicom decodes.
_ABORTS_PYNETDICOM_READS = frozenset([(0, 0), (2, 0), (2, 1), (2, 2), (2, 4), (2, 5), (2, 6)])
_PEER_ABORT = write_pdu(AAbort(AbortSource.SERVICE_USER, AbortReason.NOT_SPECIFIED))
# An acceptor never requested release, and its association is negotiated already.
_UNEXPECTED_IN_ASSOCIATION = (AAssociateRQ, AAssociateAC, AAssociateRJ, AReleaseRP)


class CommandScreen:
    """Whether pynetdicom can read a command set, remembered for the last ``size``
    command sets seen (one per engine, passed to every ``GuardedSocket``; peers send the
    same few command sets over and over, and deciding costs a pydicom decode)."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._seen: OrderedDict[bytes, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def why_unreadable(self, raw: bytes) -> str | None:
        """Why pynetdicom could not turn ``raw`` (a command set ``ul.commands`` decodes)
        into its primitive, or None: an element pydicom's dictionary does not know, or a
        value its primitive refuses (a Priority other than 0, 1, 2, for one). Its reactor
        would log that as an ERROR with a traceback and answer nothing."""
        with self._lock:
            if raw in self._seen:
                self._seen.move_to_end(raw)
                return self._seen[raw]
        why = _unreadable_for_pynetdicom(raw)
        with self._lock:
            self._seen[raw] = why
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
        return why

    def clear(self) -> None:
        with self._lock:
            self._seen.clear()


def _unreadable_for_pynetdicom(raw: bytes) -> str | None:
    """``CommandScreen.why_unreadable``, decided afresh."""
    offset = 0
    while offset + 8 <= len(raw):
        group, element, length = _ELEMENT_HEADER.unpack_from(raw, offset)
        if not dictionary_has_tag(group << 16 | element):
            return f"unknown command element ({group:04X},{element:04X})"
        offset += 8 + length
    try:
        command_set = decode(BytesIO(raw), True, True)
        message = _MESSAGE_TYPES[int(command_set.CommandField)][1]()
        message.command_set = command_set
        message.data_set = BytesIO()
        message.context_id = 1
        message.message_to_primitive()
    except Exception as exc:  # whatever pynetdicom's own decoding would raise
        return f"command set pynetdicom cannot read: {type(exc).__name__}"
    return None


_ELEMENT_HEADER = struct.Struct("<HHI")


def _has_input(sock: socket.socket) -> bool:
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True
    poller = select.poll()  # not select.select: descriptors above 1023 are common here
    try:
        poller.register(sock.fileno(), select.POLLIN)
    except (OSError, ValueError):
        return True  # recv reports the error
    return bool(poller.poll(0))
