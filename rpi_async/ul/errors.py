"""The two kinds of Upper Layer protocol error (as in h11).

``RemoteProtocolError``: the peer sent something PS3.8/PS3.7 does not allow. Each
subclass carries the A-ABORT reason (PS3.8 Table 9-26) the connection answers with.

``LocalProtocolError``: this side asked for something the protocol forbids in the
current state, or a value that cannot be encoded (an AE title over 16 bytes...).
"""

from __future__ import annotations

from typing import ClassVar

from rpi_async.errors import RpiError
from rpi_async.ul.codes import AbortReason


class UpperLayerError(RpiError):
    """Base class of the DICOM Upper Layer errors."""


class RemoteProtocolError(UpperLayerError):
    """The peer broke the protocol; ``reason`` is what the A-ABORT PDU says."""

    reason: ClassVar[AbortReason] = AbortReason.NOT_SPECIFIED


class UnrecognizedPdu(RemoteProtocolError):
    """The PDU-type byte is not one of the seven PDUs."""

    reason = AbortReason.UNRECOGNIZED_PDU


class UnexpectedPdu(RemoteProtocolError):
    """A well-formed PDU that the state machine does not allow now."""

    reason = AbortReason.UNEXPECTED_PDU


class UnrecognizedParameter(RemoteProtocolError):
    """A parameter value that is not one the standard defines."""

    reason = AbortReason.UNRECOGNIZED_PDU_PARAMETER


class UnexpectedParameter(RemoteProtocolError):
    """A known item in the wrong place: a duplicate, or an item of the other PDU."""

    reason = AbortReason.UNEXPECTED_PDU_PARAMETER


class InvalidParameter(RemoteProtocolError):
    """A length that lies, a missing mandatory item, a value out of range."""

    reason = AbortReason.INVALID_PDU_PARAMETER_VALUE


class PduTooLong(InvalidParameter):
    """The PDU-length field exceeds what this side is prepared to receive."""


class LocalProtocolError(UpperLayerError):
    """This side asked for something the protocol or the current state forbids."""


class InvalidCommand(InvalidParameter):
    """A DIMSE command set that cannot be decoded or lacks a mandatory element."""
