"""One association's life, as both engines record it: outcome, stats, access slot, log line.

Theory of operation. Each engine creates an ``AssociationRecord`` when a connection opens
(``Lifecycle.opened``) and then reports what happens to it, in the protocol's terms:
the access policy's decision on the A-ASSOCIATE-RQ (``admit``), the reply (``accepted``
or ``rejected`` with the PS3.8 Table 9-21 result, source and reason), the DIMSE
operations served, and how it ended (``released``, ``aborted``, ``timed_out``). When the
connection is gone the engine calls ``closed`` once: the record gives back its
per-peer access slot, updates the counters (``ServerStats``) and writes the one access
log line. Everything here is thread-safe where it must be (pynetdicom reports from its
association threads) and idempotent where an engine may report twice.

Values a peer controls (AE titles, protocol error details) are escaped before they
reach a log line: a control character or backslash in a Calling AE Title cannot forge
a line. A Calling AE Title that PS3.5 does not allow (control characters, backslash,
blank) is refused as not recognized before the allow-list is consulted, on both engines.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import logging
import socket
import struct
import sys
import threading
import time
from dataclasses import dataclass, field

from rpi_async.engines.access import AccessPolicy, Refusal
from rpi_async.service.stats import ServerStats
from rpi_async.ul.codes import (
    PresentationRejectReason,
    RejectResult,
    RejectSource,
    UserRejectReason,
    reject_reason,
)
from rpi_async.ul.negotiation import valid_ae_title

log = logging.getLogger("rpi_async.access")


class Outcome(enum.Enum):
    """Where an association's connection stands, or how it ended."""

    CONNECTED = "connected"  # no A-ASSOCIATE-RQ answered yet
    ACCEPTED = "accepted"  # established and open
    REJECTED = "rejected"
    RELEASED = "released"
    ABORTED_BY_PEER = "aborted by peer"
    ABORTED = "aborted"  # by us: protocol error, idle, shutdown, internal error
    TIMED_OUT = "timed out"  # ARTIM expired before the association was established
    CLOSED = "closed"  # the connection ended without release or abort

    @property
    def final(self) -> bool:
        return self not in (Outcome.CONNECTED, Outcome.ACCEPTED)


# Counted (and logged) apart from the overall limit: the same A-ASSOCIATE-RJ fields
# (transient, presentation, local-limit-exceeded), caused by max_associations_per_peer.
PEER_LIMIT_REASON = "peer-limit-exceeded"

# Over max_associations: A-ASSOCIATE-RJ rejected-transient, presentation, local limit exceeded.
LOCAL_LIMIT_REPLY = (
    RejectResult.TRANSIENT,
    RejectSource.SERVICE_PROVIDER_PRESENTATION,
    PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
)
# The A-ASSOCIATE-RJ (result, source, reason) each access-policy refusal is answered with.
REFUSAL_REPLIES: dict[Refusal, tuple[int, int, int]] = {
    Refusal.PEER_LIMIT: LOCAL_LIMIT_REPLY,
    Refusal.CALLING_AE_NOT_RECOGNIZED: (
        RejectResult.PERMANENT,
        RejectSource.SERVICE_USER,
        UserRejectReason.CALLING_AE_TITLE_NOT_RECOGNIZED,
    ),
}


_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F)} | {0x5C: "\\\\"}


def escaped(value: str) -> str:
    """A peer-controlled value made safe for one log line: no control characters."""
    return value.translate(_ESCAPES)


@dataclass(eq=False, slots=True)
class AssociationRecord:
    """What is known about one association. No patient data in here."""

    address: str
    port: int
    started: float
    calling_ae: str = ""
    called_ae: str = ""
    sops: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    outcome: Outcome = Outcome.CONNECTED
    detail: str = ""  # reject reason, abort cause
    peer_slot: str | None = None  # peer address whose access slot this holds
    busy: bool = False  # a DIMSE operation is in progress
    counted: bool = False  # counted as an open association in the stats
    finished: bool = False

    def line(self, ended: float) -> str:
        sops = ",".join(dict.fromkeys(self.sops)) or "-"
        statuses = ",".join(f"{s:04X}" for s in self.statuses) or "-"
        outcome = self.outcome.value
        if self.detail:
            outcome += f" ({escaped(self.detail)})"
        calling = escaped(self.calling_ae) or "?"
        called = escaped(self.called_ae) or "?"
        return (
            f"association {self.address}:{self.port} {calling}->{called} "
            f"{outcome} in {(ended - self.started) * 1000:.1f} ms sop={sops} "
            f"statuses={statuses}"
        )


class Lifecycle:
    """The bookkeeping both engines drive; one per engine."""

    def __init__(self, stats: ServerStats, access: AccessPolicy) -> None:
        self.stats = stats
        self.access = access
        self.active = 0  # established associations, for max_associations

    def opened(self, address: str, port: int) -> AssociationRecord:
        return AssociationRecord(address, port, time.monotonic())

    def admit(self, record: AssociationRecord, calling_ae: str) -> Refusal | None:
        """Ask the access policy about an A-ASSOCIATE-RQ; None: admitted (slot held)."""
        record.calling_ae = calling_ae
        if not valid_ae_title(calling_ae):  # before any allow-list comparison (PS3.5)
            return Refusal.CALLING_AE_NOT_RECOGNIZED
        decision = self.access.admit(calling_ae, record.address)
        if not decision.admitted:
            return decision.refusal
        if self.access.max_per_peer:
            record.peer_slot = record.address  # given back by ``closed``
        return None

    def release_slot(self, record: AssociationRecord) -> None:
        if record.peer_slot is not None:
            self.access.release(record.peer_slot)
            record.peer_slot = None

    def accepted(self, record: AssociationRecord, calling_ae: str, called_ae: str) -> None:
        record.calling_ae, record.called_ae = calling_ae, called_ae
        record.outcome = Outcome.ACCEPTED
        record.counted = True
        self.active += 1
        self.stats.association_opened()

    def rejected(
        self, record: AssociationRecord, source: int, reason: int, *, peer_limit: bool = False
    ) -> None:
        name = PEER_LIMIT_REASON if peer_limit else reject_reason(source, reason)
        record.outcome, record.detail = Outcome.REJECTED, name
        self.release_slot(record)
        self.stats.association_rejected(name)

    def ended(self, record: AssociationRecord, outcome: Outcome, detail: str = "") -> None:
        """Released, aborted or timed out; the first report stands."""
        if not record.outcome.final:
            record.outcome, record.detail = outcome, detail

    def closed(self, record: AssociationRecord) -> None:
        """The connection is gone: counters, access slot and the log line, once."""
        if record.finished:
            return
        record.finished = True
        if record.outcome is Outcome.ACCEPTED:
            record.outcome = Outcome.CLOSED
        self.release_slot(record)
        if record.counted:
            record.counted = False
            self.active -= 1
            self.stats.association_closed(aborted=record.outcome is not Outcome.RELEASED)
        if log.isEnabledFor(logging.INFO):  # the line costs a few µs to build
            log.info("%s", record.line(time.monotonic()))


# Connections whose A-ASSOCIATE-RQ is not complete yet: in all, and from one address. A
# busy peer (a balancer, a load test) opens a thousand at once and each waits only until
# its request is read, so one address may hold a quarter of them; ARTIM bounds the time.
MAX_UNASSOCIATED = 4096
MAX_UNASSOCIATED_PER_PEER = 1024
# Bytes received and not yet answered (partial PDUs, DIMSE messages being reassembled),
# over all connections of one engine.
RECEIVE_BUDGET = 128 * 1024 * 1024


class ReceiveBudget:
    """What all connections of an engine may hold of half-received input, together.

    Each connection charges what it holds after every read (``charge``) and gives it
    back when it closes (``charge`` of 0). A charge that would go over the limit is
    refused: that connection is ended, the others keep theirs.
    """

    def __init__(self, limit: int = RECEIVE_BUDGET) -> None:
        self.limit = limit
        self.held = 0
        self._lock = threading.Lock()

    def charge(self, owner: Charge, held: int) -> bool:
        """Set ``owner``'s holding to ``held`` bytes; False (unchanged) if over the limit."""
        with self._lock:
            total = self.held - owner.bytes + held
            if held > owner.bytes and total > self.limit:
                return False
            self.held, owner.bytes = total, held
            return True


@dataclass(slots=True)
class Charge:
    """One connection's share of a ``ReceiveBudget``."""

    bytes: int = 0


# A classic BPF program of one instruction, ``ret #0``: every packet dropped.
_SO_ATTACH_FILTER = 26  # Linux, asm-generic/socket.h
_DROP_EVERY_PACKET = (ctypes.c_ubyte * 8).from_buffer_copy(struct.pack("=HBBI", 0x06, 0, 0, 0))
_DROP_PROGRAM = struct.pack("@HP", 1, ctypes.addressof(_DROP_EVERY_PACKET))


def refuse_new_connections(listener: socket.socket) -> None:
    """Before a listening socket is closed: no new connection completes, the ones queued
    stay. Closing a listener resets the connections in its queue (their clients may have
    sent a request already), and ``listen(0)`` still lets one more in. On Linux a socket
    filter that drops every packet makes the kernel ignore new SYNs: such a client retries
    its SYN a second later and finds the port closed (connection refused), while the
    connections queued already are accepted and answered. Elsewhere: ``listen(0)``."""
    with contextlib.suppress(OSError):
        listener.listen(0)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            listener.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, _DROP_PROGRAM)
