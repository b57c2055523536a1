"""DIMSE command sets: C-ECHO, C-FIND and C-CANCEL messages and their codec (PS3.7 §9, §E).

Theory of operation
-------------------
A command set is a group 0000 data set, always Implicit VR Little Endian (PS3.7
§6.3.1): ``tag (4) | length (4) | value`` per element, in ascending tag order,
starting with Command Group Length (0000,0000). The handful of elements these
services use are encoded and decoded by hand with ``struct`` rather than through
pydicom: a C-FIND-RSP is a dozen precomputed byte strings joined, and decoding a
C-FIND-RQ is one pass over the elements into a dict.

Messages are frozen dataclasses; whether a data set follows is not part of them but
is the ``has_dataset`` flag beside them (Command Data Set Type, 0x0101 = none). A
command field this module does not model decodes to ``UnknownCommand`` so that the
application can answer or abort; an undecodable command set raises
``InvalidCommand`` (the connection aborts with invalid-PDU-parameter-value).
"""

from __future__ import annotations

import enum
import functools
import struct
from dataclasses import dataclass

from rpi_async.dicom.uids import SopClass
from rpi_async.ul.errors import InvalidCommand, LocalProtocolError


class CommandField(enum.IntEnum):
    """Command Field (0000,0100) values of the messages modelled here (PS3.7 §E.1)."""

    C_FIND_RQ = 0x0020
    C_ECHO_RQ = 0x0030
    C_CANCEL_RQ = 0x0FFF
    C_FIND_RSP = 0x8020
    C_ECHO_RSP = 0x8030


class Priority(enum.IntEnum):
    """Priority (0000,0700) of a C-FIND-RQ."""

    MEDIUM = 0x0000
    HIGH = 0x0001
    LOW = 0x0002


class Tag(enum.IntEnum):
    """Element numbers of group 0000 used by these messages (PS3.7 Table E.1-1)."""

    COMMAND_GROUP_LENGTH = 0x0000
    AFFECTED_SOP_CLASS_UID = 0x0002
    COMMAND_FIELD = 0x0100
    MESSAGE_ID = 0x0110
    MESSAGE_ID_BEING_RESPONDED_TO = 0x0120
    PRIORITY = 0x0700
    COMMAND_DATA_SET_TYPE = 0x0800
    STATUS = 0x0900
    OFFENDING_ELEMENT = 0x0901
    ERROR_COMMENT = 0x0902


NO_DATA_SET = 0x0101
DATA_SET_PRESENT = 0x0001  # any other value means present; this is what most peers send


@dataclass(frozen=True, slots=True)
class CEchoRQ:
    message_id: int
    affected_sop_class_uid: str = SopClass.VERIFICATION


@dataclass(frozen=True, slots=True)
class CEchoRSP:
    message_id_being_responded_to: int
    status: int
    affected_sop_class_uid: str = SopClass.VERIFICATION


@dataclass(frozen=True, slots=True)
class CFindRQ:
    message_id: int
    affected_sop_class_uid: str
    priority: int = Priority.MEDIUM


@dataclass(frozen=True, slots=True)
class CFindRSP:
    message_id_being_responded_to: int
    affected_sop_class_uid: str
    status: int
    offending_element: tuple[int, ...] = ()
    error_comment: str | None = None


@dataclass(frozen=True, slots=True)
class CCancelRQ:
    message_id_being_responded_to: int


@dataclass(frozen=True, slots=True)
class UnknownCommand:
    """A command field not modelled here; ``elements`` are raw ``(element, value)``."""

    command_field: int
    message_id: int | None
    elements: tuple[tuple[int, bytes], ...]


DimseCommand = CEchoRQ | CEchoRSP | CFindRQ | CFindRSP | CCancelRQ | UnknownCommand

# --- encoding -------------------------------------------------------------------------

_ELEMENT_HEADER = struct.Struct("<HHI")
_US_ELEMENT = struct.Struct("<HHIH")
_UL_ELEMENT = struct.Struct("<HHII")
_AT_VALUE = struct.Struct("<HH")


def _us(element: int, value: int) -> bytes:
    return _US_ELEMENT.pack(0, element, 2, value)


def _raw(element: int, value: bytes) -> bytes:
    return _ELEMENT_HEADER.pack(0, element, len(value)) + value


_UID_CHARACTERS = frozenset("0123456789.")


def is_uid(text: str) -> bool:
    """Whether ``text`` can be encoded as a UI value (PS3.5 §9.1: digits and dots, 64)."""
    return 0 < len(text) <= 64 and _UID_CHARACTERS.issuperset(text)


@functools.lru_cache(maxsize=256)
def _uid(element: int, uid: str) -> bytes:
    value = uid.encode("ascii")
    if len(value) % 2:
        value += b"\x00"
    return _raw(element, value)


def _text(element: int, text: str) -> bytes:
    value = text.encode("latin-1")
    if len(value) % 2:
        value += b" "
    return _raw(element, value)


def _offending(tags: tuple[int, ...]) -> bytes:
    value = b"".join(_AT_VALUE.pack(tag >> 16, tag & 0xFFFF) for tag in tags)
    return _raw(Tag.OFFENDING_ELEMENT, value)


_FIELD = {cf: _us(Tag.COMMAND_FIELD, cf) for cf in CommandField}
_DATA_SET_TYPE = {
    True: _us(Tag.COMMAND_DATA_SET_TYPE, DATA_SET_PRESENT),
    False: _us(Tag.COMMAND_DATA_SET_TYPE, NO_DATA_SET),
}


def _with_group_length(parts: list[bytes]) -> bytes:
    body = b"".join(parts)
    return _UL_ELEMENT.pack(0, Tag.COMMAND_GROUP_LENGTH, 4, len(body)) + body


def encode_command(command: DimseCommand, has_dataset: bool) -> bytes:
    """The command set of ``command`` in Implicit VR Little Endian, group length first."""
    try:
        return _encode(command, has_dataset)
    except (struct.error, ValueError) as exc:
        raise LocalProtocolError(f"cannot encode {type(command).__name__}: {exc}") from exc


# A C-FIND-RSP is the hottest encode: its four US elements are packed in one call.
_FIND_RSP_US = struct.Struct("<HHIHHHIHHHIHHHIH")
_FIND_RSP_FIXED = 40  # the four US elements
_AFFECTED_UID_TAG = int(Tag.AFFECTED_SOP_CLASS_UID)
_ERROR_COMMENT_TAG = int(Tag.ERROR_COMMENT)


def _encode_find_rsp(command: CFindRSP, has_dataset: bool) -> bytes:
    uid = _uid(_AFFECTED_UID_TAG, command.affected_sop_class_uid)
    fields = _FIND_RSP_US.pack(
        0, 0x0100, 2, 0x8020,
        0, 0x0120, 2, command.message_id_being_responded_to,
        0, 0x0800, 2, DATA_SET_PRESENT if has_dataset else NO_DATA_SET,
        0, 0x0900, 2, command.status,
    )  # fmt: skip
    extra = b""
    if command.offending_element:
        extra = _offending(command.offending_element)
    if command.error_comment is not None:
        extra += _text(_ERROR_COMMENT_TAG, command.error_comment)
    length = len(uid) + _FIND_RSP_FIXED + len(extra)
    return _UL_ELEMENT.pack(0, 0, 4, length) + uid + fields + extra


def _encode(command: DimseCommand, has_dataset: bool) -> bytes:
    if isinstance(command, CFindRSP):
        return _encode_find_rsp(command, has_dataset)
    ds_type = _DATA_SET_TYPE[has_dataset]
    if isinstance(command, CFindRQ):
        return _with_group_length(
            [
                _uid(Tag.AFFECTED_SOP_CLASS_UID, command.affected_sop_class_uid),
                _FIELD[CommandField.C_FIND_RQ],
                _us(Tag.MESSAGE_ID, command.message_id),
                _us(Tag.PRIORITY, command.priority),
                ds_type,
            ]
        )
    if isinstance(command, CEchoRSP):
        return _with_group_length(
            [
                _uid(Tag.AFFECTED_SOP_CLASS_UID, command.affected_sop_class_uid),
                _FIELD[CommandField.C_ECHO_RSP],
                _us(Tag.MESSAGE_ID_BEING_RESPONDED_TO, command.message_id_being_responded_to),
                ds_type,
                _us(Tag.STATUS, command.status),
            ]
        )
    if isinstance(command, CEchoRQ):
        return _with_group_length(
            [
                _uid(Tag.AFFECTED_SOP_CLASS_UID, command.affected_sop_class_uid),
                _FIELD[CommandField.C_ECHO_RQ],
                _us(Tag.MESSAGE_ID, command.message_id),
                ds_type,
            ]
        )
    if isinstance(command, CCancelRQ):
        return _with_group_length(
            [
                _FIELD[CommandField.C_CANCEL_RQ],
                _us(Tag.MESSAGE_ID_BEING_RESPONDED_TO, command.message_id_being_responded_to),
                ds_type,
            ]
        )
    elements = dict(command.elements)
    elements[Tag.COMMAND_FIELD] = struct.pack("<H", command.command_field)
    if command.message_id is not None:
        elements[Tag.MESSAGE_ID] = struct.pack("<H", command.message_id)
    elements[Tag.COMMAND_DATA_SET_TYPE] = struct.pack(
        "<H", DATA_SET_PRESENT if has_dataset else NO_DATA_SET
    )
    elements.pop(Tag.COMMAND_GROUP_LENGTH, None)
    return _with_group_length([_raw(el, value) for el, value in sorted(elements.items())])


# --- decoding -------------------------------------------------------------------------

_U16 = struct.Struct("<H")


def _get_us(elements: dict[int, bytes], element: int, name: str) -> int:
    value = elements.get(element)
    if value is None:
        raise InvalidCommand(f"command set lacks {name} (0000,{element:04X})")
    if len(value) != 2:
        raise InvalidCommand(f"{name} (0000,{element:04X}) has length {len(value)}, not 2")
    return int(_U16.unpack(value)[0])


def _get_text(elements: dict[int, bytes], element: int) -> str | None:
    value = elements.get(element)
    if value is None:
        return None
    return value.decode("latin-1").rstrip("\x00 ")


def _get_offending(elements: dict[int, bytes]) -> tuple[int, ...]:
    value = elements.get(Tag.OFFENDING_ELEMENT, b"")
    if len(value) % 4:
        raise InvalidCommand(f"Offending Element of length {len(value)}")
    return tuple((group << 16) | element for group, element in _AT_VALUE.iter_unpack(value))


# Plain ints for the decode loop (an IntEnum attribute costs ~8x an int).
_COMMAND_FIELD = int(Tag.COMMAND_FIELD)
_DATA_SET_TYPE_TAG = int(Tag.COMMAND_DATA_SET_TYPE)
_AFFECTED_SOP_CLASS = int(Tag.AFFECTED_SOP_CLASS_UID)
_PRIORITY = int(Tag.PRIORITY)
_MESSAGE_ID = int(Tag.MESSAGE_ID)
_RESPONDED_TO = int(Tag.MESSAGE_ID_BEING_RESPONDED_TO)
_STATUS = int(Tag.STATUS)
_ERROR_COMMENT = int(Tag.ERROR_COMMENT)
_C_FIND_RQ = int(CommandField.C_FIND_RQ)
_C_CANCEL_RQ = int(CommandField.C_CANCEL_RQ)
_C_ECHO_RQ = int(CommandField.C_ECHO_RQ)
_C_FIND_RSP = int(CommandField.C_FIND_RSP)
_C_ECHO_RSP = int(CommandField.C_ECHO_RSP)
_MEDIUM = int(Priority.MEDIUM)


def decode_command(data: bytes) -> tuple[DimseCommand, bool]:
    """Decode a command set: ``(command, has_dataset)``; raises ``InvalidCommand``."""
    elements: dict[int, bytes] = {}
    offset = 0
    size = len(data)
    unpack = _ELEMENT_HEADER.unpack_from
    while offset < size:
        if size - offset < 8:
            raise InvalidCommand("command set ends inside an element header")
        group, element, length = unpack(data, offset)
        if group != 0:
            raise InvalidCommand(f"element ({group:04X},{element:04X}) in a command set")
        start = offset + 8
        offset = start + length
        if offset > size:
            raise InvalidCommand(f"element (0000,{element:04X}) overruns the command set")
        elements[element] = data[start:offset]
    field = _get_us(elements, _COMMAND_FIELD, "Command Field")
    has_dataset = _get_us(elements, _DATA_SET_TYPE_TAG, "Command Data Set Type") != NO_DATA_SET
    sop_class = _get_text(elements, _AFFECTED_SOP_CLASS)
    command: DimseCommand
    if field == _C_FIND_RQ:
        priority = _get_us(elements, _PRIORITY, "Priority") if _PRIORITY in elements else _MEDIUM
        command = CFindRQ(_get_us(elements, _MESSAGE_ID, "Message ID"), sop_class or "", priority)
    elif field == _C_CANCEL_RQ:
        command = CCancelRQ(_get_us(elements, _RESPONDED_TO, "Message ID Being Responded To"))
    elif field == _C_ECHO_RQ:
        command = CEchoRQ(
            _get_us(elements, _MESSAGE_ID, "Message ID"), sop_class or SopClass.VERIFICATION
        )
    elif field == _C_FIND_RSP:
        command = CFindRSP(
            _get_us(elements, _RESPONDED_TO, "Message ID Being Responded To"),
            sop_class or "",
            _get_us(elements, _STATUS, "Status"),
            _get_offending(elements),
            _get_text(elements, _ERROR_COMMENT),
        )
    elif field == _C_ECHO_RSP:
        command = CEchoRSP(
            _get_us(elements, _RESPONDED_TO, "Message ID Being Responded To"),
            _get_us(elements, _STATUS, "Status"),
            sop_class or SopClass.VERIFICATION,
        )
    else:
        message_id = (
            _get_us(elements, _MESSAGE_ID, "Message ID") if _MESSAGE_ID in elements else None
        )
        kept = tuple(
            (el, value) for el, value in sorted(elements.items()) if el not in _SYNTHESISED_ELEMENTS
        )
        command = UnknownCommand(field, message_id, kept)
    return command, has_dataset


_SYNTHESISED_ELEMENTS = frozenset(
    {Tag.COMMAND_GROUP_LENGTH, Tag.COMMAND_FIELD, Tag.MESSAGE_ID, Tag.COMMAND_DATA_SET_TYPE}
)
