"""Variable items of the A-ASSOCIATE PDUs (PS3.8 §9.3.2-9.3.3, PS3.7 Annex D.3.3).

Theory of operation
-------------------
An item is ``type (1) | reserved (1) | length (2, big endian) | value``. Decoding walks
the items of one enclosing field with ``iter_items``, which refuses any length that
overruns its enclosure (a length that lies), and dispatches on the type. As PS3.8
§9.3.1 requires, items of unrecognised types are skipped; unknown *user information*
sub-items are kept as ``RawItem`` so a proxy or a log can still see them. A known item
in the wrong place (an A-ASSOCIATE-AC item in a request, a second maximum length
sub-item) is an ``UnexpectedParameter``; a length or value out of range is an
``InvalidParameter``. Reserved bytes are never tested.

Text fields: AE titles and UIDs are decoded as Latin-1 so that decoding never fails on
bytes (negotiation then rejects what it does not know); trailing NUL and space padding
is stripped from UIDs, and both are encoded without padding.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

from rpi_async.ul.codes import ContextResult, ItemType
from rpi_async.ul.errors import InvalidParameter, LocalProtocolError, UnexpectedParameter

ITEM_HEADER = struct.Struct(">BxH")
_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U16_PAIR = struct.Struct(">HH")
_CONTEXT_HEADER = struct.Struct(">BxBx")
_ID_FLAGS = struct.Struct(">BB")
_MAX_ITEM_VALUE = 0xFFFF

# Item types as plain ints for the decode loops (an IntEnum attribute costs ~8x an int).
_APPLICATION_CONTEXT = int(ItemType.APPLICATION_CONTEXT)
_CONTEXT_RQ = int(ItemType.PRESENTATION_CONTEXT_RQ)
_CONTEXT_AC = int(ItemType.PRESENTATION_CONTEXT_AC)
_ABSTRACT_SYNTAX = int(ItemType.ABSTRACT_SYNTAX)
_TRANSFER_SYNTAX = int(ItemType.TRANSFER_SYNTAX)
_USER_INFORMATION = int(ItemType.USER_INFORMATION)
_MAXIMUM_LENGTH = int(ItemType.MAXIMUM_LENGTH)
_CLASS_UID = int(ItemType.IMPLEMENTATION_CLASS_UID)
_ASYNC_WINDOW = int(ItemType.ASYNCHRONOUS_OPERATIONS_WINDOW)
_ROLE_SELECTION = int(ItemType.ROLE_SELECTION)
_VERSION_NAME = int(ItemType.IMPLEMENTATION_VERSION_NAME)
_SOP_EXTENDED = int(ItemType.SOP_CLASS_EXTENDED_NEGOTIATION)
_COMMON_EXTENDED = int(ItemType.SOP_CLASS_COMMON_EXTENDED_NEGOTIATION)
_IDENTITY_RQ = int(ItemType.USER_IDENTITY_RQ)
_IDENTITY_AC = int(ItemType.USER_IDENTITY_AC)
_ACCEPTANCE = int(ContextResult.ACCEPTANCE)


@dataclass(frozen=True, slots=True)
class PresentationContextRQ:
    """Presentation context item of an A-ASSOCIATE-RQ (0x20)."""

    context_id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PresentationContextAC:
    """Presentation context item of an A-ASSOCIATE-AC (0x21).

    ``transfer_syntax`` is not significant unless the result is acceptance.
    """

    context_id: int
    result: ContextResult
    transfer_syntax: str = ""


@dataclass(frozen=True, slots=True)
class AsyncOpsWindow:
    """Asynchronous operations window sub-item (0x53, PS3.7 D.3.3.3)."""

    max_operations_invoked: int
    max_operations_performed: int


@dataclass(frozen=True, slots=True)
class RoleSelection:
    """SCP/SCU role selection sub-item (0x54, PS3.7 D.3.3.4)."""

    sop_class_uid: str
    scu_role: bool
    scp_role: bool


@dataclass(frozen=True, slots=True)
class SopClassExtendedNegotiation:
    """SOP class extended negotiation sub-item (0x56, PS3.7 D.3.3.5)."""

    sop_class_uid: str
    service_class_application_information: bytes


@dataclass(frozen=True, slots=True)
class SopClassCommonExtendedNegotiation:
    """SOP class common extended negotiation sub-item (0x57, PS3.7 D.3.3.6)."""

    sop_class_uid: str
    service_class_uid: str
    related_general_sop_classes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UserIdentityRQ:
    """User identity sub-item of a request (0x58, PS3.7 D.3.3.7.1)."""

    identity_type: int
    positive_response_requested: bool
    primary_field: bytes
    secondary_field: bytes = b""


@dataclass(frozen=True, slots=True)
class UserIdentityAC:
    """User identity sub-item of an acceptance (0x59, PS3.7 D.3.3.7.2)."""

    server_response: bytes = b""


@dataclass(frozen=True, slots=True)
class RawItem:
    """A user information sub-item of a type this codec does not know."""

    item_type: int
    data: bytes


@dataclass(frozen=True, slots=True)
class UserInformation:
    """User information item (0x50): its sub-items, each optional on the wire.

    ``max_length`` is the Maximum Length Received (PS3.8 Annex D.1): the largest
    P-DATA-TF variable field the sender accepts, 0 for no limit, None when absent.
    """

    max_length: int | None = None
    implementation_class_uid: str | None = None
    implementation_version_name: str | None = None
    async_ops_window: AsyncOpsWindow | None = None
    role_selections: tuple[RoleSelection, ...] = ()
    sop_class_extended: tuple[SopClassExtendedNegotiation, ...] = ()
    sop_class_common_extended: tuple[SopClassCommonExtendedNegotiation, ...] = ()
    user_identity: UserIdentityRQ | UserIdentityAC | None = None
    unknown: tuple[RawItem, ...] = ()


# --- decoding -------------------------------------------------------------------------


def iter_items(data: bytes, start: int, end: int, where: str) -> Iterator[tuple[int, int, int]]:
    """Yield ``(item_type, value_start, value_end)`` for the items in ``data[start:end]``."""
    offset = start
    while offset < end:
        if end - offset < 4:
            raise InvalidParameter(f"truncated item header in {where}")
        item_type, length = ITEM_HEADER.unpack_from(data, offset)
        value_start = offset + 4
        value_end = value_start + length
        if value_end > end:
            raise InvalidParameter(
                f"item 0x{item_type:02X} in {where} claims {length} bytes,"
                f" only {end - value_start} remain"
            )
        yield item_type, value_start, value_end
        offset = value_end


def decode_text(data: bytes, start: int, end: int) -> str:
    """A UID or name field: Latin-1, trailing NUL/space padding removed."""
    return data[start:end].decode("latin-1").rstrip("\x00 ")


def _length_prefixed(data: bytes, offset: int, end: int, what: str) -> tuple[int, int]:
    """Bounds of a 2-byte-length-prefixed field starting at ``offset``."""
    if end - offset < 2:
        raise InvalidParameter(f"{what}: missing length field")
    (length,) = _U16.unpack_from(data, offset)
    field_end = offset + 2 + length
    if field_end > end:
        raise InvalidParameter(f"{what}: length {length} overruns the sub-item")
    return offset + 2, field_end


def decode_context_rq(data: bytes, start: int, end: int) -> PresentationContextRQ:
    if end - start < 4:
        raise InvalidParameter("presentation context item shorter than 4 bytes")
    context_id = data[start]
    abstract: str | None = None
    transfers: list[str] = []
    for item_type, vs, ve in iter_items(data, start + 4, end, "presentation context"):
        if item_type == _ABSTRACT_SYNTAX:
            if abstract is not None:
                raise UnexpectedParameter(f"context {context_id}: two abstract syntax sub-items")
            abstract = decode_text(data, vs, ve)
        elif item_type == _TRANSFER_SYNTAX:
            transfers.append(decode_text(data, vs, ve))
        elif item_type in _KNOWN_ITEM_TYPES:
            raise UnexpectedParameter(f"item 0x{item_type:02X} inside presentation context")
    if abstract is None:
        raise InvalidParameter(f"presentation context {context_id} has no abstract syntax")
    if not transfers:  # PS3.8 §9.3.2.2: one or more transfer syntax sub-items
        raise InvalidParameter(f"presentation context {context_id} has no transfer syntax")
    return PresentationContextRQ(context_id, abstract, tuple(transfers))


def decode_context_ac(data: bytes, start: int, end: int) -> PresentationContextAC:
    if end - start < 4:
        raise InvalidParameter("presentation context item shorter than 4 bytes")
    context_id, raw_result = _CONTEXT_HEADER.unpack_from(data, start)
    try:
        result = ContextResult(raw_result)
    except ValueError:
        raise InvalidParameter(f"context {context_id}: result/reason {raw_result}") from None
    transfer: str | None = None
    for item_type, vs, ve in iter_items(data, start + 4, end, "presentation context"):
        if item_type == _TRANSFER_SYNTAX:
            if transfer is not None:
                raise UnexpectedParameter(f"context {context_id}: two transfer syntaxes")
            transfer = decode_text(data, vs, ve)
        elif item_type in _KNOWN_ITEM_TYPES:
            raise UnexpectedParameter(f"item 0x{item_type:02X} inside presentation context")
    if transfer is None and raw_result == _ACCEPTANCE:
        raise InvalidParameter(f"accepted context {context_id} has no transfer syntax")
    return PresentationContextAC(context_id, result, transfer or "")


def _role_selection(data: bytes, start: int, end: int) -> RoleSelection:
    uid_start, uid_end = _length_prefixed(data, start, end, "role selection")
    if end - uid_end != 2:
        raise InvalidParameter("role selection: item length does not match its UID length")
    scu, scp = _ID_FLAGS.unpack_from(data, uid_end)
    if scu > 1 or scp > 1:
        raise InvalidParameter(f"role selection: role values {scu}/{scp}")
    return RoleSelection(decode_text(data, uid_start, uid_end), bool(scu), bool(scp))


def _sop_class_extended(data: bytes, start: int, end: int) -> SopClassExtendedNegotiation:
    uid_start, uid_end = _length_prefixed(data, start, end, "SOP class extended negotiation")
    return SopClassExtendedNegotiation(decode_text(data, uid_start, uid_end), data[uid_end:end])


def _common_extended(data: bytes, start: int, end: int) -> SopClassCommonExtendedNegotiation:
    what = "SOP class common extended negotiation"
    sop_start, sop_end = _length_prefixed(data, start, end, what)
    svc_start, svc_end = _length_prefixed(data, sop_end, end, what)
    rel_start, rel_end = _length_prefixed(data, svc_end, end, what)
    if rel_end != end:
        raise InvalidParameter(f"{what}: item length does not match its fields")
    related: list[str] = []
    offset = rel_start
    while offset < rel_end:
        uid_start, uid_end = _length_prefixed(data, offset, rel_end, what)
        related.append(decode_text(data, uid_start, uid_end))
        offset = uid_end
    return SopClassCommonExtendedNegotiation(
        decode_text(data, sop_start, sop_end), decode_text(data, svc_start, svc_end), tuple(related)
    )


def _user_identity_rq(data: bytes, start: int, end: int) -> UserIdentityRQ:
    if end - start < 2:
        raise InvalidParameter("user identity sub-item shorter than 2 bytes")
    identity_type, positive = _ID_FLAGS.unpack_from(data, start)
    p_start, p_end = _length_prefixed(data, start + 2, end, "user identity")
    s_start, s_end = _length_prefixed(data, p_end, end, "user identity")
    if s_end != end:
        raise InvalidParameter("user identity: item length does not match its fields")
    return UserIdentityRQ(identity_type, positive == 1, data[p_start:p_end], data[s_start:s_end])


def _user_identity_ac(data: bytes, start: int, end: int) -> UserIdentityAC:
    r_start, r_end = _length_prefixed(data, start, end, "user identity response")
    if r_end != end:
        raise InvalidParameter("user identity response: item length does not match")
    return UserIdentityAC(data[r_start:r_end])


def decode_user_information(data: bytes, start: int, end: int, *, request: bool) -> UserInformation:
    """Sub-items of a user information item; ``request`` tells RQ from AC."""
    max_length: int | None = None
    class_uid: str | None = None
    version: str | None = None
    window: AsyncOpsWindow | None = None
    identity: UserIdentityRQ | UserIdentityAC | None = None
    roles: list[RoleSelection] = []
    extended: list[SopClassExtendedNegotiation] = []
    common: list[SopClassCommonExtendedNegotiation] = []
    unknown: list[RawItem] = []
    seen: set[int] = set()
    for item_type, vs, ve in iter_items(data, start, end, "user information"):
        if item_type in _SINGLE_SUB_ITEMS:
            if item_type in seen:
                raise UnexpectedParameter(f"user information has two 0x{item_type:02X} sub-items")
            seen.add(item_type)
        if item_type == _MAXIMUM_LENGTH:
            if ve - vs != 4:
                raise InvalidParameter(f"maximum length sub-item of length {ve - vs}")
            (max_length,) = _U32.unpack_from(data, vs)
        elif item_type == _CLASS_UID:
            class_uid = decode_text(data, vs, ve)
        elif item_type == _VERSION_NAME:
            version = decode_text(data, vs, ve)
        elif item_type == _ASYNC_WINDOW:
            if ve - vs != 4:
                raise InvalidParameter(f"asynchronous operations window of length {ve - vs}")
            window = AsyncOpsWindow(*_U16_PAIR.unpack_from(data, vs))
        elif item_type == _ROLE_SELECTION:
            roles.append(_role_selection(data, vs, ve))
        elif item_type == _SOP_EXTENDED:
            extended.append(_sop_class_extended(data, vs, ve))
        elif item_type == _COMMON_EXTENDED:
            if not request:
                raise UnexpectedParameter("common extended negotiation in an A-ASSOCIATE-AC")
            common.append(_common_extended(data, vs, ve))
        elif item_type == _IDENTITY_RQ:
            if not request:
                raise UnexpectedParameter("user identity request in an A-ASSOCIATE-AC")
            identity = _user_identity_rq(data, vs, ve)
        elif item_type == _IDENTITY_AC:
            if request:
                raise UnexpectedParameter("user identity response in an A-ASSOCIATE-RQ")
            identity = _user_identity_ac(data, vs, ve)
        elif item_type in _KNOWN_ITEM_TYPES:
            raise UnexpectedParameter(f"item 0x{item_type:02X} inside user information")
        else:
            unknown.append(RawItem(item_type, data[vs:ve]))
    return UserInformation(
        max_length=max_length,
        implementation_class_uid=class_uid,
        implementation_version_name=version,
        async_ops_window=window,
        role_selections=tuple(roles),
        sop_class_extended=tuple(extended),
        sop_class_common_extended=tuple(common),
        user_identity=identity,
        unknown=tuple(unknown),
    )


_KNOWN_ITEM_TYPES = frozenset(int(t) for t in ItemType)
_SINGLE_SUB_ITEMS = frozenset(
    {
        _MAXIMUM_LENGTH,
        _CLASS_UID,
        _VERSION_NAME,
        _ASYNC_WINDOW,
        _IDENTITY_RQ,
        _IDENTITY_AC,
    }
)


# --- encoding -------------------------------------------------------------------------


def encode_item(item_type: int, value: bytes) -> bytes:
    if len(value) > _MAX_ITEM_VALUE:
        raise LocalProtocolError(f"item 0x{item_type:02X} value of {len(value)} bytes")
    return ITEM_HEADER.pack(item_type, len(value)) + value


def encode_text(text: str) -> bytes:
    return text.encode("latin-1")


def _prefixed(value: bytes) -> bytes:
    if len(value) > _MAX_ITEM_VALUE:
        raise LocalProtocolError(f"field of {len(value)} bytes does not fit a 2-byte length")
    return _U16.pack(len(value)) + value


def encode_context_rq(context: PresentationContextRQ) -> bytes:
    parts = [
        _CONTEXT_HEADER.pack(context.context_id, 0),
        encode_item(_ABSTRACT_SYNTAX, encode_text(context.abstract_syntax)),
    ]
    parts += [encode_item(_TRANSFER_SYNTAX, encode_text(ts)) for ts in context.transfer_syntaxes]
    return encode_item(_CONTEXT_RQ, b"".join(parts))


def encode_context_ac(context: PresentationContextAC) -> bytes:
    value = _CONTEXT_HEADER.pack(context.context_id, context.result) + encode_item(
        _TRANSFER_SYNTAX, encode_text(context.transfer_syntax)
    )
    return encode_item(_CONTEXT_AC, value)


def encode_user_information(info: UserInformation) -> bytes:
    """Sub-items in ascending type order (some older peers expect it, PS3.8 §9.3.2.3)."""
    parts: list[bytes] = []
    if info.max_length is not None:
        parts.append(encode_item(_MAXIMUM_LENGTH, _U32.pack(info.max_length)))
    if info.implementation_class_uid is not None:
        parts.append(encode_item(_CLASS_UID, encode_text(info.implementation_class_uid)))
    if info.async_ops_window is not None:
        window = info.async_ops_window
        parts.append(
            encode_item(
                _ASYNC_WINDOW,
                _U16_PAIR.pack(window.max_operations_invoked, window.max_operations_performed),
            )
        )
    for role in info.role_selections:
        value = _prefixed(encode_text(role.sop_class_uid)) + _ID_FLAGS.pack(
            role.scu_role, role.scp_role
        )
        parts.append(encode_item(_ROLE_SELECTION, value))
    if info.implementation_version_name is not None:
        parts.append(
            encode_item(
                _VERSION_NAME,
                encode_text(info.implementation_version_name),
            )
        )
    for ext in info.sop_class_extended:
        value = _prefixed(encode_text(ext.sop_class_uid)) + (
            ext.service_class_application_information
        )
        parts.append(encode_item(_SOP_EXTENDED, value))
    for com in info.sop_class_common_extended:
        related = b"".join(_prefixed(encode_text(uid)) for uid in com.related_general_sop_classes)
        value = (
            _prefixed(encode_text(com.sop_class_uid))
            + _prefixed(encode_text(com.service_class_uid))
            + _prefixed(related)
        )
        parts.append(encode_item(_COMMON_EXTENDED, value))
    identity = info.user_identity
    if isinstance(identity, UserIdentityRQ):
        value = (
            _ID_FLAGS.pack(identity.identity_type, identity.positive_response_requested)
            + _prefixed(identity.primary_field)
            + _prefixed(identity.secondary_field)
        )
        parts.append(encode_item(_IDENTITY_RQ, value))
    elif isinstance(identity, UserIdentityAC):
        parts.append(encode_item(_IDENTITY_AC, _prefixed(identity.server_response)))
    parts += [encode_item(raw.item_type, raw.data) for raw in info.unknown]
    return encode_item(_USER_INFORMATION, b"".join(parts))
