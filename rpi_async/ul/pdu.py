"""PDU codec: the seven DICOM Upper Layer PDUs as frozen dataclasses (PS3.8 §9.3).

Theory of operation
-------------------
``read_pdu(buf, max_len)`` looks at the 6-byte header first (type, reserved, 4-byte
big-endian length). It rejects an unknown type, a fixed-size PDU whose length is not
4, and a length over the receive limit *before* waiting for or copying the body, so
a peer announcing a 4 GiB PDU costs nothing. Only when the whole PDU is buffered is
the body copied out once and decoded; the function returns ``(pdu, consumed)``, or
``None`` while more bytes are needed. Every malformation raises a
``RemoteProtocolError`` subclass whose ``reason`` is the A-ABORT reason to answer
with (PS3.8 Table 9-26).

``write_pdu(pdu)`` is the exact inverse: ``read_pdu(write_pdu(p))`` gives back ``p``
for every PDU this module can build, and the bytes are stable across a round trip.
Values that cannot be encoded raise ``LocalProtocolError``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rpi_async.dicom.uids import APPLICATION_CONTEXT_NAME
from rpi_async.ul.codes import (
    MCH_COMMAND,
    MCH_LAST,
    PROTOCOL_VERSION_1,
    AbortReason,
    AbortSource,
    ItemType,
    PduType,
)
from rpi_async.ul.errors import (
    InvalidParameter,
    LocalProtocolError,
    PduTooLong,
    UnexpectedParameter,
    UnrecognizedPdu,
)
from rpi_async.ul.items import (
    PresentationContextAC,
    PresentationContextRQ,
    UserInformation,
    decode_context_ac,
    decode_context_rq,
    decode_text,
    decode_user_information,
    encode_context_ac,
    encode_context_rq,
    encode_item,
    encode_text,
    encode_user_information,
    iter_items,
)

PDU_HEADER = struct.Struct(">BxI")
PDV_HEADER = struct.Struct(">IBB")
_FOUR_BYTES = struct.Struct(">xxBB")
_ASSOCIATE_FIXED = struct.Struct(">H2x16s16s32x")
_ASSOCIATE_FIXED_LEN = _ASSOCIATE_FIXED.size  # 68
_AE_TITLE_LEN = 16
NO_USER_INFORMATION = UserInformation()
_P_DATA_TF = int(PduType.P_DATA_TF)
_A_ASSOCIATE_RQ = int(PduType.A_ASSOCIATE_RQ)
_APPLICATION_CONTEXT = int(ItemType.APPLICATION_CONTEXT)
_USER_INFORMATION = int(ItemType.USER_INFORMATION)
_CONTEXT_RQ = int(ItemType.PRESENTATION_CONTEXT_RQ)
_CONTEXT_AC = int(ItemType.PRESENTATION_CONTEXT_AC)
_MIN_PDATA_LEN = 6  # one PDV item header: length (4), context ID (1), control header (1)


@dataclass(frozen=True, slots=True)
class AAssociateRQ:
    """A-ASSOCIATE-RQ (PS3.8 §9.3.2). AE titles carry no padding."""

    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextRQ, ...]
    user_information: UserInformation = NO_USER_INFORMATION
    application_context_name: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = PROTOCOL_VERSION_1


@dataclass(frozen=True, slots=True)
class AAssociateAC:
    """A-ASSOCIATE-AC (PS3.8 §9.3.3). The AE titles echo the request's."""

    called_ae_title: str
    calling_ae_title: str
    presentation_contexts: tuple[PresentationContextAC, ...]
    user_information: UserInformation = NO_USER_INFORMATION
    application_context_name: str = APPLICATION_CONTEXT_NAME
    protocol_version: int = PROTOCOL_VERSION_1


@dataclass(frozen=True, slots=True)
class AAssociateRJ:
    """A-ASSOCIATE-RJ (PS3.8 §9.3.4): result, source and reason codes of Table 9-21."""

    result: int
    source: int
    reason: int


@dataclass(frozen=True, slots=True)
class PresentationDataValue:
    """One PDV item: a fragment of a command or data set (PS3.8 §9.3.5.1, Annex E)."""

    context_id: int
    is_command: bool
    is_last: bool
    data: bytes


@dataclass(frozen=True, slots=True)
class PDataTF:
    """P-DATA-TF (PS3.8 §9.3.5): one or more PDV items."""

    pdvs: tuple[PresentationDataValue, ...]


@dataclass(frozen=True, slots=True)
class AReleaseRQ:
    """A-RELEASE-RQ (PS3.8 §9.3.6)."""


@dataclass(frozen=True, slots=True)
class AReleaseRP:
    """A-RELEASE-RP (PS3.8 §9.3.7)."""


@dataclass(frozen=True, slots=True)
class AAbort:
    """A-ABORT (PS3.8 §9.3.8). ``reason`` is only significant from the provider."""

    source: int = AbortSource.SERVICE_USER
    reason: int = AbortReason.NOT_SPECIFIED


Pdu = AAssociateRQ | AAssociateAC | AAssociateRJ | PDataTF | AReleaseRQ | AReleaseRP | AAbort

_FIXED_LENGTH_TYPES = frozenset(
    {PduType.A_ASSOCIATE_RJ, PduType.A_RELEASE_RQ, PduType.A_RELEASE_RP, PduType.A_ABORT}
)


# --- reading --------------------------------------------------------------------------


def read_pdu(
    buf: bytes | bytearray | memoryview,
    max_len: int,
    *,
    max_associate_len: int | None = None,
    requests: RequestCache | None = None,
) -> tuple[Pdu, int] | None:
    """Decode the PDU at the start of ``buf``: ``(pdu, bytes consumed)``, or None.

    ``max_len`` bounds the PDU-length field (0: no bound); ``max_associate_len``, when
    given, replaces it for every PDU except P-DATA-TF, whose limit is the negotiated
    Maximum Length Received while association PDUs have their own. An A-ASSOCIATE-RQ
    seen before by ``requests`` is that cache's value.
    """
    if len(buf) < 6:
        return None
    pdu_type, length = PDU_HEADER.unpack_from(buf, 0)
    decoder = _DECODERS.get(pdu_type)
    if decoder is None:
        raise UnrecognizedPdu(f"unrecognised PDU type 0x{pdu_type:02X}")
    if pdu_type in _FIXED_LENGTH_TYPES:
        if length != 4:
            raise InvalidParameter(f"{PduType(pdu_type).name} with PDU-length {length}, not 4")
    else:
        limit = max_len
        if max_associate_len is not None and pdu_type != _P_DATA_TF:
            limit = max_associate_len
        if limit and length > limit:
            raise PduTooLong(
                f"{PduType(pdu_type).name} of {length} bytes exceeds the limit of {limit}"
            )
    end = 6 + length
    if len(buf) < end:
        return None
    if isinstance(buf, bytes):
        body = buf[6:end]
    else:
        with memoryview(buf) as view:
            body = view[6:end].tobytes()
    if requests is not None and pdu_type == _A_ASSOCIATE_RQ:
        return requests.decode(body), end
    return decoder(body), end


def _decode_pdata(body: bytes) -> PDataTF:
    size = len(body)
    if size < _MIN_PDATA_LEN:
        raise InvalidParameter(f"P-DATA-TF of {size} bytes holds no PDV item")
    pdvs: list[PresentationDataValue] = []
    offset = 0
    unpack = PDV_HEADER.unpack_from
    while offset < size:
        if size - offset < _MIN_PDATA_LEN:
            raise InvalidParameter("truncated PDV item in P-DATA-TF")
        item_len, context_id, control = unpack(body, offset)
        if item_len < 2:
            raise InvalidParameter(f"PDV item of length {item_len} has no context ID and header")
        end = offset + 4 + item_len
        if end > size:
            raise InvalidParameter(f"PDV item of length {item_len} overruns the P-DATA-TF")
        pdvs.append(
            PresentationDataValue(
                context_id,
                bool(control & MCH_COMMAND),
                bool(control & MCH_LAST),
                body[offset + 6 : end],
            )
        )
        offset = end
    return PDataTF(tuple(pdvs))


def _decode_ae_title(raw: bytes) -> str:
    # Leading and trailing spaces are not significant (PS3.8 Table 9-11); NUL padding
    # is a common fault of peers, tolerated likewise.
    return raw.decode("latin-1").strip(" \x00")


def _decode_associate(body: bytes, *, request: bool) -> AAssociateRQ | AAssociateAC:
    name = "A-ASSOCIATE-RQ" if request else "A-ASSOCIATE-AC"
    if len(body) < _ASSOCIATE_FIXED_LEN:
        raise InvalidParameter(f"{name} of {len(body)} bytes is shorter than its fixed fields")
    version, called, calling = _ASSOCIATE_FIXED.unpack_from(body, 0)
    context_name: str | None = None
    info: UserInformation | None = None
    contexts_rq: list[PresentationContextRQ] = []
    contexts_ac: list[PresentationContextAC] = []
    own_context = _CONTEXT_RQ if request else _CONTEXT_AC
    for item_type, vs, ve in iter_items(body, _ASSOCIATE_FIXED_LEN, len(body), name):
        if item_type == _APPLICATION_CONTEXT:
            if context_name is not None:
                raise UnexpectedParameter(f"{name} has two application context items")
            context_name = decode_text(body, vs, ve)
        elif item_type == own_context:
            if request:
                contexts_rq.append(decode_context_rq(body, vs, ve))
            else:
                contexts_ac.append(decode_context_ac(body, vs, ve))
        elif item_type == _USER_INFORMATION:
            if info is not None:
                raise UnexpectedParameter(f"{name} has two user information items")
            info = decode_user_information(body, vs, ve, request=request)
        elif item_type in _TOP_LEVEL_MISPLACED:
            raise UnexpectedParameter(f"item 0x{item_type:02X} at the top level of {name}")
        # Items of unrecognised types are skipped (PS3.8 §9.3.1).
    if context_name is None:
        if not request:
            raise InvalidParameter(f"{name} has no application context item")
        # A request without one names no context we support: negotiation rejects it
        # (A-ASSOCIATE-RJ, application-context-name-not-supported), as a wrong one.
        context_name = ""
    called_ae = _decode_ae_title(called)
    calling_ae = _decode_ae_title(calling)
    info = info if info is not None else UserInformation()
    if request:
        seen: set[int] = set()
        for context in contexts_rq:
            if context.context_id % 2 == 0 or context.context_id in seen:
                raise InvalidParameter(
                    f"presentation context ID {context.context_id} is even or repeated"
                )
            seen.add(context.context_id)
        return AAssociateRQ(called_ae, calling_ae, tuple(contexts_rq), info, context_name, version)
    return AAssociateAC(called_ae, calling_ae, tuple(contexts_ac), info, context_name, version)


_TOP_LEVEL_MISPLACED = frozenset(int(t) for t in ItemType) - {
    ItemType.APPLICATION_CONTEXT,
    ItemType.USER_INFORMATION,
}


class RequestCache:
    """Decoded A-ASSOCIATE-RQs by their bytes, for one acceptor (``read_pdu``'s
    ``requests``; the native engine owns one and gives it to each of its connections).

    A client sends the same request on every association (same AE titles, contexts, user
    information), and the PDU classes are frozen, so one decoded value can be shared; it
    also lets the layers above memoize by its identity. Bounded: requests of at most
    ``MAX_BODY`` bytes, ``ENTRIES`` of them; a full cache starts again.
    """

    ENTRIES = 256
    MAX_BODY = 4096

    def __init__(self) -> None:
        self._decoded: dict[bytes, AAssociateRQ] = {}

    def __len__(self) -> int:
        return len(self._decoded)

    def decode(self, body: bytes) -> AAssociateRQ:
        rq = self._decoded.get(body)
        if rq is None:
            rq = _decode_rq(body)
            if len(body) <= self.MAX_BODY:
                if len(self._decoded) >= self.ENTRIES:
                    self._decoded.clear()
                self._decoded[body] = rq
        return rq


def _decode_rq(body: bytes) -> AAssociateRQ:
    rq = _decode_associate(body, request=True)
    assert isinstance(rq, AAssociateRQ)
    return rq


def _decode_ac(body: bytes) -> Pdu:
    return _decode_associate(body, request=False)


def _decode_rj(body: bytes) -> Pdu:
    # Byte 7 is reserved; result, source, reason follow (PS3.8 Table 9-21).
    return AAssociateRJ(body[1], body[2], body[3])


def _decode_release_rq(body: bytes) -> Pdu:
    return AReleaseRQ()


def _decode_release_rp(body: bytes) -> Pdu:
    return AReleaseRP()


def _decode_abort(body: bytes) -> Pdu:
    source, reason = _FOUR_BYTES.unpack(body)
    return AAbort(source, reason)


_DECODERS: dict[int, Callable[[bytes], Pdu]] = {
    PduType.A_ASSOCIATE_RQ: _decode_rq,
    PduType.A_ASSOCIATE_AC: _decode_ac,
    PduType.A_ASSOCIATE_RJ: _decode_rj,
    PduType.P_DATA_TF: _decode_pdata,
    PduType.A_RELEASE_RQ: _decode_release_rq,
    PduType.A_RELEASE_RP: _decode_release_rp,
    PduType.A_ABORT: _decode_abort,
}


# --- writing --------------------------------------------------------------------------


def _encode_ae_title(title: str) -> bytes:
    raw = title.encode("latin-1")
    if len(raw) > _AE_TITLE_LEN:
        raise LocalProtocolError(f"AE title {title!r} is longer than 16 bytes")
    return raw.ljust(_AE_TITLE_LEN, b" ")


def _frame(pdu_type: int, body: bytes) -> bytes:
    return PDU_HEADER.pack(pdu_type, len(body)) + body


def _encode_associate(pdu: AAssociateRQ | AAssociateAC) -> bytes:
    parts = [
        _ASSOCIATE_FIXED.pack(
            pdu.protocol_version,
            _encode_ae_title(pdu.called_ae_title),
            _encode_ae_title(pdu.calling_ae_title),
        ),
        encode_item(ItemType.APPLICATION_CONTEXT, encode_text(pdu.application_context_name)),
    ]
    if isinstance(pdu, AAssociateRQ):
        parts += [encode_context_rq(cx) for cx in pdu.presentation_contexts]
        pdu_type = PduType.A_ASSOCIATE_RQ
    else:
        parts += [encode_context_ac(cx) for cx in pdu.presentation_contexts]
        pdu_type = PduType.A_ASSOCIATE_AC
    parts.append(encode_user_information(pdu.user_information))
    return _frame(pdu_type, b"".join(parts))


def encode_pdata(pdvs: tuple[PresentationDataValue, ...]) -> bytes:
    parts: list[bytes] = []
    total = 0
    pack = PDV_HEADER.pack
    for pdv in pdvs:
        control = (MCH_COMMAND if pdv.is_command else 0) | (MCH_LAST if pdv.is_last else 0)
        parts.append(pack(len(pdv.data) + 2, pdv.context_id, control))
        parts.append(pdv.data)
        total += len(pdv.data) + 6
    return PDU_HEADER.pack(_P_DATA_TF, total) + b"".join(parts)


_RELEASE_RQ_BYTES = PDU_HEADER.pack(PduType.A_RELEASE_RQ, 4) + bytes(4)
_RELEASE_RP_BYTES = PDU_HEADER.pack(PduType.A_RELEASE_RP, 4) + bytes(4)


def _write_any(pdu: Any) -> bytes:
    if isinstance(pdu, PDataTF):
        return encode_pdata(pdu.pdvs)
    if isinstance(pdu, AAssociateRQ | AAssociateAC):
        return _encode_associate(pdu)
    if isinstance(pdu, AAssociateRJ):
        return _frame(PduType.A_ASSOCIATE_RJ, bytes((0, pdu.result, pdu.source, pdu.reason)))
    if isinstance(pdu, AReleaseRQ):
        return _RELEASE_RQ_BYTES
    if isinstance(pdu, AReleaseRP):
        return _RELEASE_RP_BYTES
    if isinstance(pdu, AAbort):
        return _frame(PduType.A_ABORT, bytes((0, 0, pdu.source, pdu.reason)))
    raise LocalProtocolError(f"not a PDU: {type(pdu).__name__}")


def write_pdu(pdu: Pdu) -> bytes:
    """Encode ``pdu``; raises ``LocalProtocolError`` for values that do not fit."""
    try:
        return _write_any(pdu)
    except (struct.error, ValueError, OverflowError) as exc:
        raise LocalProtocolError(f"cannot encode {type(pdu).__name__}: {exc}") from exc
