"""One requestor association over an asyncio transport, with failures sorted by kind.

Theory of operation: ``PduStream`` is a thin ``asyncio.Protocol`` that cuts the byte
stream into PDUs by their 6-byte headers (PS3.8 §9.3.1) and hands them to the one waiting
reader; a bad header makes it close the transport and fail that reader. ``Session`` walks
the requestor's happy path of the PS3.8 state machine (Sta1 → Sta5 → Sta6 → Sta7 → Sta1)
and turns anything else into an ``AssociationFailed`` that names its kind:

- refused: the TCP connection was refused; connect-failed: any other error connecting;
- rejected: A-ASSOCIATE-RJ, or our only presentation context was not accepted;
- aborted: A-ABORT, or the connection closed or was reset before the release finished;
- protocol-error: an unknown or unexpected PDU, or one that does not parse;
- timed-out: raised by the caller's timeout, not here.

A C-FIND exchange (PS3.7 §9.1.2) reads responses until one carries a final status, taking
each pending response's identifier PDVs off the wire without decoding them.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import ssl
from collections import deque
from typing import cast

from rpi_async.bench import pdu
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import TransferSyntax

# Pending, some optional keys not supported (PS3.4 C.4.1.1.4); used by other FIND models.
PENDING_WARNING = 0xFF01
PENDING_STATUSES = frozenset({int(FindStatus.PENDING), PENDING_WARNING})


class ErrorKind(enum.StrEnum):
    REFUSED = "refused"
    CONNECT_FAILED = "connect-failed"
    REJECTED = "rejected"
    ABORTED = "aborted"
    TIMED_OUT = "timed-out"
    PROTOCOL_ERROR = "protocol-error"
    TLS_FAILED = "tls-failed"


class AssociationFailed(Exception):
    def __init__(self, kind: ErrorKind, detail: str) -> None:
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail


class PduStream(asyncio.Protocol):
    """Cuts received bytes into (PDU type, body) pairs for one reader at a time."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._ready: deque[tuple[int, bytes]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._failure: AssociationFailed | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self._failure is not None:
            return
        buf = self._buffer
        buf += data
        pos, end = 0, len(buf)
        try:
            while end - pos >= pdu.PDU_HEADER_LENGTH:
                pdu_type, length = pdu.parse_header(buf, pos)
                stop = pos + pdu.PDU_HEADER_LENGTH + length
                if stop > end:
                    break
                self._ready.append((pdu_type, bytes(buf[pos + pdu.PDU_HEADER_LENGTH : stop])))
                pos = stop
        except pdu.ProtocolViolation as exc:
            self._fail(AssociationFailed(ErrorKind.PROTOCOL_ERROR, str(exc)))
            if self.transport is not None:
                self.transport.abort()
            return
        if pos:
            del buf[:pos]
        self._wake()

    def eof_received(self) -> bool:
        return False  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        detail = f"connection lost: {exc}" if exc else "connection closed by peer"
        self._fail(AssociationFailed(ErrorKind.ABORTED, detail))

    def _fail(self, failure: AssociationFailed) -> None:
        if self._failure is None:
            self._failure = failure
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def read(self) -> tuple[int, bytes]:
        """The next PDU; raises AssociationFailed once the stream failed or closed."""
        while not self._ready:
            if self._failure is not None:
                raise self._failure
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._ready.popleft()


# A server sends the same A-ASSOCIATE-AC and the same few response command sets over and
# over: parse each distinct one once. Bounded, as a misbehaving server could vary them.
_CACHE_LIMIT = 64
_accepts: dict[bytes, pdu.AssociateAccept] = {}
_commands: dict[bytes, pdu.CommandSummary] = {}


async def _start_tls(
    loop: asyncio.AbstractEventLoop,
    transport: asyncio.Transport,
    stream: PduStream,
    tls: ssl.SSLContext,
    host: str,
) -> asyncio.Transport:
    """The TLS handshake on a connected transport (closed here if it fails)."""
    try:
        secure = await loop.start_tls(transport, stream, tls, server_hostname=host)
    except ssl.SSLCertVerificationError as exc:
        transport.abort()
        detail = f"server certificate not trusted ({exc.verify_message})"
        raise AssociationFailed(ErrorKind.TLS_FAILED, detail) from None
    except (ssl.SSLError, OSError) as exc:
        transport.abort()
        reason = exc.reason if isinstance(exc, ssl.SSLError) else None
        detail = f"TLS handshake failed ({reason or exc or type(exc).__name__})"
        raise AssociationFailed(ErrorKind.TLS_FAILED, detail) from None
    except BaseException:
        transport.abort()
        raise
    if secure is None:  # pragma: no cover - the loop closed the transport meanwhile
        raise AssociationFailed(ErrorKind.ABORTED, "connection closed during the TLS handshake")
    stream.transport = secure
    return stream.transport


def _accept_of(body: bytes) -> pdu.AssociateAccept:
    accept = _accepts.get(body)
    if accept is None:
        accept = pdu.parse_associate_ac(body)
        if len(_accepts) < _CACHE_LIMIT:
            _accepts[body] = accept
    return accept


def _command_of(command: bytes) -> pdu.CommandSummary:
    summary = _commands.get(command)
    if summary is None:
        summary = pdu.parse_command(command)
        if len(_commands) < _CACHE_LIMIT:
            _commands[command] = summary
    return summary


def _unexpected(pdu_type: int, expecting: str) -> AssociationFailed:
    if pdu_type == pdu.PduType.ABORT:
        return AssociationFailed(ErrorKind.ABORTED, "A-ABORT received")
    name = pdu.PduType(pdu_type).name
    return AssociationFailed(
        ErrorKind.PROTOCOL_ERROR, f"{name} received while expecting {expecting}"
    )


class Session:
    """An established association; create with ``await Session.open(...)``."""

    def __init__(self, transport: asyncio.Transport, stream: PduStream, explicit: bool) -> None:
        self.transport = transport
        self.stream = stream
        self.explicit = explicit

    @classmethod
    async def open(
        cls, host: str, port: int, associate_rq: bytes, tls: ssl.SSLContext | None = None
    ) -> Session:
        """Connect (over TLS with ``tls``), send the A-ASSOCIATE-RQ, and return once it is
        accepted."""
        loop = asyncio.get_running_loop()
        try:
            transport, stream = await loop.create_connection(PduStream, host, port)
        except ConnectionRefusedError:
            raise AssociationFailed(ErrorKind.REFUSED, "connection refused") from None
        except OSError as exc:
            detail = exc.strerror or str(exc) or type(exc).__name__
            raise AssociationFailed(ErrorKind.CONNECT_FAILED, detail) from None
        if tls is not None:
            transport = await _start_tls(loop, transport, stream, tls, host)
        try:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            transport.write(associate_rq)
            pdu_type, body = await stream.read()
            if pdu_type == pdu.PduType.ASSOCIATE_RJ:
                reject = pdu.parse_associate_rj(body)
                raise AssociationFailed(ErrorKind.REJECTED, reject.describe())
            if pdu_type != pdu.PduType.ASSOCIATE_AC:
                raise _unexpected(pdu_type, "A-ASSOCIATE-AC")
            accept = _accept_of(body)
            if accept.context_result != pdu.PC_ACCEPTANCE:
                transport.write(pdu.ABORT)
                raise AssociationFailed(
                    ErrorKind.REJECTED,
                    f"presentation context not accepted (result {accept.context_result})",
                )
            if accept.transfer_syntax == TransferSyntax.EXPLICIT_VR_LE:
                explicit = True
            elif accept.transfer_syntax == TransferSyntax.IMPLICIT_VR_LE:
                explicit = False
            else:
                raise AssociationFailed(
                    ErrorKind.PROTOCOL_ERROR,
                    f"accepted transfer syntax {accept.transfer_syntax!r} was not proposed",
                )
        except pdu.ProtocolViolation as exc:
            transport.abort()
            raise AssociationFailed(ErrorKind.PROTOCOL_ERROR, str(exc)) from None
        except BaseException:
            transport.abort()
            raise
        return cls(transport, stream, explicit)

    async def find(self, pdata: bytes) -> tuple[int, int]:
        """Send one pre-encoded C-FIND; return (final status, number of pending responses)."""
        self.transport.write(pdata)
        pendings = 0
        command = bytearray()
        in_data_set = False
        status = 0
        final: int | None = None
        try:
            while True:
                pdu_type, body = await self.stream.read()
                if pdu_type != pdu.PduType.P_DATA_TF:
                    raise _unexpected(pdu_type, "a C-FIND response")
                for pdv in pdu.parse_pdata(body):
                    if pdv.is_command:
                        if in_data_set:
                            raise pdu.ProtocolViolation("command PDV inside a data set")
                        command += pdv.fragment
                        if not pdv.is_last:
                            continue
                        summary = _command_of(bytes(command))
                        command.clear()
                        if summary.command_field != pdu.CommandField.C_FIND_RSP:
                            raise pdu.ProtocolViolation(
                                f"command 0x{summary.command_field:04X} is not a C-FIND-RSP"
                            )
                        if summary.status is None:
                            raise pdu.ProtocolViolation("C-FIND-RSP without Status")
                        status = summary.status
                        in_data_set = summary.has_data_set
                    elif not in_data_set:
                        raise pdu.ProtocolViolation("data set PDV without a command")
                    elif pdv.is_last:
                        in_data_set = False
                    else:
                        continue
                    if in_data_set:
                        continue
                    if status in PENDING_STATUSES:
                        pendings += 1
                    else:
                        final = status
                if final is not None:
                    return final, pendings
        except pdu.ProtocolViolation as exc:
            self.transport.abort()
            raise AssociationFailed(ErrorKind.PROTOCOL_ERROR, str(exc)) from None

    async def release(self) -> None:
        """A-RELEASE-RQ, wait for the A-RELEASE-RP, close."""
        self.transport.write(pdu.RELEASE_RQ)
        try:
            pdu_type, _ = await self.stream.read()
        except BaseException:
            self.transport.abort()
            raise
        if pdu_type != pdu.PduType.RELEASE_RP:
            self.transport.abort()
            raise _unexpected(pdu_type, "A-RELEASE-RP")
        if self.transport.get_extra_info("sslcontext") is not None:
            # The association is over; a TLS close would wait for the peer's close_notify,
            # which a server that just closes never sends.
            self.transport.abort()
        else:
            self.transport.close()

    async def wait_for_peer(self) -> tuple[int, bytes]:
        """Wait for anything the peer sends on an idle association (used by held ones)."""
        return await self.stream.read()

    def abort(self) -> None:
        """Send A-ABORT and drop the connection."""
        if not self.transport.is_closing():
            self.transport.write(pdu.ABORT)
        self.transport.abort()

    def drop(self) -> None:
        """Drop the connection unless it is already closing (after a failure or cancel)."""
        if not self.transport.is_closing():
            self.transport.abort()
