"""What ``Connection.next_event()`` returns: nouns, as frozen dataclasses.

Each event is an indication primitive of PS3.8 §7 that the state machine issued
(AE-6, DT-2, AR-2, AA-3, ...) or the ``NEED_DATA`` sentinel. Events that come with
bytes the connection already decided to send (an A-ABORT answering a protocol
error) carry them in ``data_to_send``: the adapter must write them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from rpi_async.ul.commands import DimseCommand
from rpi_async.ul.pdu import AAssociateRQ


class NeedData(enum.Enum):
    """Sentinel type: no complete PDU is buffered; call ``receive_data`` first."""

    NEED_DATA = "NEED_DATA"


NEED_DATA = NeedData.NEED_DATA


@dataclass(frozen=True, slots=True)
class AssociationRequested:
    """A-ASSOCIATE indication (AE-6): answer with ``accept`` or ``reject``."""

    request: AAssociateRQ


@dataclass(frozen=True, slots=True)
class DimseMessage:
    """A complete DIMSE message (P-DATA indication, DT-2/AR-6), data set still encoded.

    ``dataset`` is in the transfer syntax accepted for ``context_id``; None when the
    command says no data set follows.
    """

    context_id: int
    command: DimseCommand
    dataset: bytes | None


@dataclass(frozen=True, slots=True)
class ReleaseRequested:
    """A-RELEASE indication (AR-2, or AR-8 on a release collision): call ``release_response``."""


@dataclass(frozen=True, slots=True)
class ReleaseConfirmed:
    """A-RELEASE confirmation (AR-3: close the transport; AR-10: collision, answer next)."""


@dataclass(frozen=True, slots=True)
class Aborted:
    """The peer sent an A-ABORT (AA-3 indication; ``should_close`` is now true)."""

    source: int
    reason: int


@dataclass(frozen=True, slots=True)
class ProtocolAborted:
    """The peer broke the protocol; we abort (AA-1, AA-7 or AA-8).

    ``data_to_send`` holds the A-ABORT PDU to write; then wait for the peer to close
    or for ARTIM to expire (the connection asks for the timer).
    """

    reason: int
    detail: str
    data_to_send: bytes


@dataclass(frozen=True, slots=True)
class ConnectionClosed:
    """The transport is gone and every buffered PDU was handled (the last event).

    ``aborted`` is true when the association was still alive (AA-4, A-P-ABORT).
    """

    aborted: bool


Event = (
    AssociationRequested
    | DimseMessage
    | ReleaseRequested
    | ReleaseConfirmed
    | Aborted
    | ProtocolAborted
    | ConnectionClosed
)
