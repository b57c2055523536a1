"""The requestor side of the DICOM Upper Layer, just large enough for the load generator.

Theory of operation: the generator speaks PS3.8 itself so that it measures the server and
not a client library, and so that it is an implementation independent of the server's own.
Every request it sends is a byte string built once before the run:

- A-ASSOCIATE-RQ (PS3.8 §9.3.2): Application Context, one Presentation Context proposing the
  chosen SOP class with Implicit and Explicit VR Little Endian, and User Information with
  the Maximum Length, Implementation Class UID and Implementation Version Name.
- P-DATA-TF (PS3.8 §9.3.5) holding two PDVs: the C-FIND-RQ command set (PS3.7 §9.3.2.1,
  always Implicit VR Little Endian) and the identifier in the transfer syntax the acceptor
  chose (both encodings are built; one is picked per association).
- A-RELEASE-RQ (§9.3.6) and A-ABORT (§9.3.8).

What it reads is just as narrow: the 6-byte PDU header (type, length), A-ASSOCIATE-AC
(result of our presentation context, its transfer syntax, the peer's maximum PDU length),
A-ASSOCIATE-RJ (result/source/reason), A-ABORT (source/reason), and the PDVs of a P-DATA-TF,
from whose command sets only Status (0000,0900) and Command Data Set Type (0000,0800) are
taken. Anything else is a protocol error. Nothing here does I/O.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from rpi_async.dicom.uids import APPLICATION_CONTEXT_NAME, TransferSyntax

IMPLEMENTATION_CLASS_UID = (
    "2.25.276505050884729078702504903087398484551"  # a UUID-derived UID (PS3.5 §B.2)
)
IMPLEMENTATION_VERSION_NAME = "RPI_ASYNC_BENCH"
MAX_PDU_LENGTH = 1 << 20  # what we announce we can receive
PDU_HEADER_LENGTH = 6
# A PDU whose length field exceeds this is garbage, not a response we would ever get.
PDU_SANITY_LIMIT = 64 << 20
CONTEXT_ID = 1

PROPOSED_TRANSFER_SYNTAXES: tuple[TransferSyntax, ...] = (
    TransferSyntax.IMPLICIT_VR_LE,
    TransferSyntax.EXPLICIT_VR_LE,
)


class PduType(enum.IntEnum):
    ASSOCIATE_RQ = 0x01
    ASSOCIATE_AC = 0x02
    ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    RELEASE_RQ = 0x05
    RELEASE_RP = 0x06
    ABORT = 0x07


class ItemType(enum.IntEnum):
    APPLICATION_CONTEXT = 0x10
    PRESENTATION_CONTEXT_RQ = 0x20
    PRESENTATION_CONTEXT_AC = 0x21
    ABSTRACT_SYNTAX = 0x30
    TRANSFER_SYNTAX = 0x40
    USER_INFORMATION = 0x50
    MAXIMUM_LENGTH = 0x51
    IMPLEMENTATION_CLASS_UID = 0x52
    IMPLEMENTATION_VERSION_NAME = 0x55


class CommandField(enum.IntEnum):
    C_FIND_RQ = 0x0020
    C_FIND_RSP = 0x8020


class Priority(enum.IntEnum):
    MEDIUM = 0x0000


# Command Data Set Type (0000,0800): this value says "no data set follows" (PS3.7 §E.2).
NO_DATA_SET = 0x0101
DATA_SET_PRESENT = 0x0001

# PDV message control header bits (PS3.8 Annex E.2).
PDV_COMMAND = 0x01
PDV_LAST = 0x02

# Command set tags (group 0000) as (group << 16 | element).
TAG_COMMAND_GROUP_LENGTH = 0x00000000
TAG_AFFECTED_SOP_CLASS_UID = 0x00000002
TAG_COMMAND_FIELD = 0x00000100
TAG_MESSAGE_ID = 0x00000110
TAG_PRIORITY = 0x00000700
TAG_COMMAND_DATA_SET_TYPE = 0x00000800
TAG_STATUS = 0x00000900

# Presentation context results in an A-ASSOCIATE-AC (PS3.8 Table 9-18).
PC_ACCEPTANCE = 0


class ProtocolViolation(Exception):
    """The peer sent bytes that are not the PDU we could expect at this point."""


# --- encoding -----------------------------------------------------------------------


def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def _pdu(pdu_type: int, body: bytes) -> bytes:
    return struct.pack(">BBI", pdu_type, 0, len(body)) + body


def _ae_title(title: str) -> bytes:
    raw = title.encode("ascii")
    if not raw.strip() or len(raw) > 16:
        raise ValueError(f"AE title must be 1 to 16 characters: {title!r}")
    return raw.ljust(16, b" ")


def encode_associate_rq(
    called_ae: str, calling_ae: str, abstract_syntax: str, max_length: int = MAX_PDU_LENGTH
) -> bytes:
    """A-ASSOCIATE-RQ proposing one presentation context with both Little Endian syntaxes."""
    pc_body = struct.pack(">BBBB", CONTEXT_ID, 0, 0, 0) + _item(
        ItemType.ABSTRACT_SYNTAX, abstract_syntax.encode("ascii")
    )
    for ts in PROPOSED_TRANSFER_SYNTAXES:
        pc_body += _item(ItemType.TRANSFER_SYNTAX, ts.value.encode("ascii"))
    user_info = (
        _item(ItemType.MAXIMUM_LENGTH, struct.pack(">I", max_length))
        + _item(ItemType.IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_CLASS_UID.encode("ascii"))
        + _item(ItemType.IMPLEMENTATION_VERSION_NAME, IMPLEMENTATION_VERSION_NAME.encode("ascii"))
    )
    body = (
        struct.pack(">HH", 1, 0)
        + _ae_title(called_ae)
        + _ae_title(calling_ae)
        + bytes(32)
        + _item(ItemType.APPLICATION_CONTEXT, APPLICATION_CONTEXT_NAME.encode("ascii"))
        + _item(ItemType.PRESENTATION_CONTEXT_RQ, pc_body)
        + _item(ItemType.USER_INFORMATION, user_info)
    )
    return _pdu(PduType.ASSOCIATE_RQ, body)


RELEASE_RQ = _pdu(PduType.RELEASE_RQ, bytes(4))
RELEASE_RP = _pdu(PduType.RELEASE_RP, bytes(4))
# Source 0: service-user initiated; reason 0: not specified (PS3.8 Table 9-26).
ABORT = _pdu(PduType.ABORT, bytes(4))


def _implicit(tag: int, value: bytes) -> bytes:
    if len(value) % 2:
        raise ValueError("element values must have even length")
    return struct.pack("<HHI", tag >> 16, tag & 0xFFFF, len(value)) + value


def _uid_value(uid: str) -> bytes:
    raw = uid.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def encode_find_command(sop_class: str, message_id: int = 1) -> bytes:
    """The C-FIND-RQ command set in Implicit VR Little Endian, with its group length."""
    elements = (
        _implicit(TAG_AFFECTED_SOP_CLASS_UID, _uid_value(sop_class))
        + _implicit(TAG_COMMAND_FIELD, struct.pack("<H", CommandField.C_FIND_RQ))
        + _implicit(TAG_MESSAGE_ID, struct.pack("<H", message_id))
        + _implicit(TAG_PRIORITY, struct.pack("<H", Priority.MEDIUM))
        + _implicit(TAG_COMMAND_DATA_SET_TYPE, struct.pack("<H", DATA_SET_PRESENT))
    )
    return _implicit(TAG_COMMAND_GROUP_LENGTH, struct.pack("<I", len(elements))) + elements


def _pdv(context_id: int, control: int, fragment: bytes) -> bytes:
    return struct.pack(">IBB", len(fragment) + 2, context_id, control) + fragment


def encode_find_pdata(command: bytes, identifier: bytes, context_id: int = CONTEXT_ID) -> bytes:
    """One P-DATA-TF carrying the whole command PDV and the whole identifier PDV."""
    body = _pdv(context_id, PDV_COMMAND | PDV_LAST, command) + _pdv(
        context_id, PDV_LAST, identifier
    )
    return _pdu(PduType.P_DATA_TF, body)


# --- decoding -----------------------------------------------------------------------


def parse_header(buf: bytes | bytearray | memoryview, offset: int = 0) -> tuple[int, int]:
    """(PDU type, length of the body) from the 6-byte header at ``offset``."""
    pdu_type, _, length = struct.unpack_from(">BBI", buf, offset)
    if pdu_type not in _KNOWN_PDU_TYPES:
        raise ProtocolViolation(f"unknown PDU type 0x{pdu_type:02X}")
    if length > PDU_SANITY_LIMIT:
        raise ProtocolViolation(f"PDU length {length} is not plausible")
    return pdu_type, length


_KNOWN_PDU_TYPES = frozenset(int(t) for t in PduType)


@dataclass(frozen=True, slots=True)
class AssociateAccept:
    context_result: int  # 0 = acceptance (PS3.8 Table 9-18)
    transfer_syntax: str
    max_length: int  # 0 = unlimited


@dataclass(frozen=True, slots=True)
class AssociateReject:
    result: int
    source: int
    reason: int

    def describe(self) -> str:
        text = _REJECT_REASONS.get((self.source, self.reason), "reason not specified")
        return f"{text} (result {self.result}, source {self.source}, reason {self.reason})"


_REJECT_REASONS: dict[tuple[int, int], str] = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognized",
    (1, 7): "called AE title not recognized",
    (2, 1): "no reason given (ACSE)",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}


@dataclass(frozen=True, slots=True)
class Abort:
    source: int
    reason: int


def parse_associate_ac(body: bytes) -> AssociateAccept:
    """Our presentation context's result and transfer syntax, and the peer's max length."""
    if len(body) < 68:
        raise ProtocolViolation("A-ASSOCIATE-AC too short")
    result: int | None = None
    syntax = ""
    max_length = 0
    for item_type, item in _items(body, 68):
        if item_type == ItemType.PRESENTATION_CONTEXT_AC:
            if len(item) < 4:
                raise ProtocolViolation("presentation context item too short")
            if item[0] != CONTEXT_ID:
                continue
            result = item[2]
            for sub_type, sub in _items(item, 4):
                if sub_type == ItemType.TRANSFER_SYNTAX:
                    syntax = sub.rstrip(b"\x00 ").decode("ascii", "replace")
        elif item_type == ItemType.USER_INFORMATION:
            for sub_type, sub in _items(item, 0):
                if sub_type == ItemType.MAXIMUM_LENGTH and len(sub) == 4:
                    (max_length,) = struct.unpack(">I", sub)
    if result is None:
        raise ProtocolViolation("A-ASSOCIATE-AC without our presentation context")
    return AssociateAccept(result, syntax, max_length)


def _items(buf: bytes, offset: int) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    end = len(buf)
    while offset < end:
        if offset + 4 > end:
            raise ProtocolViolation("truncated item header")
        item_type, _, length = struct.unpack_from(">BBH", buf, offset)
        offset += 4
        if offset + length > end:
            raise ProtocolViolation(f"item 0x{item_type:02X} overruns its PDU")
        out.append((item_type, bytes(buf[offset : offset + length])))
        offset += length
    return out


def parse_associate_rj(body: bytes) -> AssociateReject:
    if len(body) != 4:
        raise ProtocolViolation("A-ASSOCIATE-RJ of wrong length")
    return AssociateReject(body[1], body[2], body[3])


def parse_abort(body: bytes) -> Abort:
    if len(body) != 4:
        raise ProtocolViolation("A-ABORT of wrong length")
    return Abort(body[2], body[3])


@dataclass(frozen=True, slots=True)
class Pdv:
    context_id: int
    is_command: bool
    is_last: bool
    fragment: bytes


def parse_pdata(body: bytes) -> list[Pdv]:
    """The presentation data values of one P-DATA-TF."""
    out: list[Pdv] = []
    offset, end = 0, len(body)
    while offset < end:
        if offset + 6 > end:
            raise ProtocolViolation("truncated PDV header")
        length, context_id, control = struct.unpack_from(">IBB", body, offset)
        if length < 2 or offset + 4 + length > end:
            raise ProtocolViolation("PDV length overruns its PDU")
        fragment = body[offset + 6 : offset + 4 + length]
        out.append(Pdv(context_id, bool(control & PDV_COMMAND), bool(control & PDV_LAST), fragment))
        offset += 4 + length
    if not out:
        raise ProtocolViolation("P-DATA-TF without a PDV")
    return out


@dataclass(frozen=True, slots=True)
class CommandSummary:
    command_field: int
    status: int | None
    has_data_set: bool


def parse_command(command: bytes) -> CommandSummary:
    """Command Field, Status and whether a data set follows, from an Implicit VR LE command."""
    offset, end = 0, len(command)
    field: int | None = None
    status: int | None = None
    data_set_type = NO_DATA_SET
    while offset < end:
        if offset + 8 > end:
            raise ProtocolViolation("truncated command element")
        group, element, length = struct.unpack_from("<HHI", command, offset)
        offset += 8
        if group != 0 or offset + length > end:
            raise ProtocolViolation("malformed command set")
        tag = element
        if tag in (TAG_COMMAND_FIELD, TAG_STATUS, TAG_COMMAND_DATA_SET_TYPE):
            if length != 2:
                raise ProtocolViolation(f"command element (0000,{tag:04X}) is not a US")
            (value,) = struct.unpack_from("<H", command, offset)
            if tag == TAG_COMMAND_FIELD:
                field = value
            elif tag == TAG_STATUS:
                status = value
            else:
                data_set_type = value
        offset += length
    if field is None:
        raise ProtocolViolation("command set without Command Field")
    return CommandSummary(field, status, data_set_type != NO_DATA_SET)
