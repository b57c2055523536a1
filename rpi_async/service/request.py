"""The request identifier of an RPI query, read once: bytes in, a ``Query`` or a failure out.

Theory of operation (PS3.4 Q.2.1.1.3). ``RequestReader.read`` takes the identifier
bytes as received, with the presentation context's transfer syntax and the SOP class,
and hands a view of them to the status rules (``service.rules.check_request``). There
are two views, one reader:

- ``ParsedRequest``, from ``parse_simple``: a small reader of the identifiers SCUs send
  (Implicit or Explicit VR Little Endian, possibly deflated, tags ascending, patient
  keys, the Content Template Sequence, the SR content keys, zero-length return keys of
  the data dictionary). It answers exactly what pydicom would, and returns None (use
  pydicom) for anything outside those cases: private or unknown tags, values that are
  not plain ASCII, a character set other than the default, Latin-1 or UTF-8, malformed
  lengths.
- ``DatasetView``, over the identifier decoded by pydicom: the fallback for the rest.
  Values are decoded lazily, in the order the rules need them, so a bad value the rules
  never reach changes nothing.

Identical request bytes recur constantly (same SCU, same query), and the outcome is a
pure function of (bytes, transfer syntax, SOP class): the reader keeps recent outcomes in
a bounded LRU cache that it owns (``clear`` empties it). Requests that differ only in
the Patient ID's value recur even more (one SCU, many patients): the reader also keeps
the shapes of recent requests (``RequestShape``: the bytes before the Patient ID element
and after its value), and a request of a known shape is read by reading that one value.
"""

from __future__ import annotations

import dataclasses
import logging
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydicom._dicom_dict import DicomDictionary
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import VR

from rpi_async.dicom.transfer import (
    DEFLATED,
    IMPLICIT,
    LITTLE_ENDIAN_SYNTAXES,
    UndecodableIdentifier,
    inflate,
    read_identifier,
)
from rpi_async.service.rules import (
    TAG_CONTENT_TEMPLATE_SEQUENCE,
    TAG_ISSUER,
    TAG_MAPPING_RESOURCE,
    TAG_PATIENT_ID,
    TAG_TEMPLATE_IDENTIFIER,
    Answer,
    Query,
    check_request,
)
from rpi_async.sr.render import CONTENT_KEYS, RECORD_KEYS, request_keys
from rpi_async.sr.render import RequestKeys as EchoKeys
from rpi_async.sr.wire import LONG_VRS

log = logging.getLogger("rpi_async.dimse")

TAG_OTHER_PATIENT_IDS = 0x00101002
TAG_SPECIFIC_CHARACTER_SET = 0x00080005
_CONTENT_KEYS = frozenset(int(tag) for tag in CONTENT_KEYS)
_ECHOED_ANY_VALUE = frozenset(RECORD_KEYS) | {TAG_OTHER_PATIENT_IDS}

MAX_INFLATED = 16 * 1024 * 1024  # default limit of a deflated identifier, inflated
CACHE_SIZE = 4096  # distinct request identifiers remembered
CACHE_MAX_BYTES = 4096  # larger identifiers are read every time
SHAPES = 8  # request shapes remembered (``RequestShape``)


# The longest value of the VRs the rules read (PS3.5 Table 6.2-1), checked here whatever
# pydicom's own reading validation is set to (the pynetdicom engine switches it off).
_MAX_CHARS = {"LO": 64, "CS": 16}


def _text(ds: Dataset, tag: int) -> str | None:
    """A string element's value, stripped; None when absent. May raise on bad encoding
    or a value longer than its VR allows."""
    if tag not in ds:
        return None
    element = ds[tag]
    value = element.value
    if value is None:
        return ""
    if isinstance(value, bytes):
        raise ValueError(f"element {tag} could not be decoded")
    if isinstance(value, MultiValue):  # several values, as sent: the rules refuse them
        return "\\".join(str(v).strip() for v in value)
    limit = _MAX_CHARS.get(str(element.VR))
    if limit is not None and isinstance(value, str) and len(value) > limit:
        raise ValueError(f"element {tag} is longer than its VR allows")
    return str(value).strip()


class DatasetView:
    """A request identifier decoded by pydicom (the fallback reader)."""

    __slots__ = ("_sequence", "identifier")

    def __init__(self, identifier: Dataset) -> None:
        self.identifier = identifier
        self._sequence: Any = None

    def text(self, tag: int) -> str | None:
        return _text(self.identifier, tag)

    def template_items(self) -> int | None:
        if TAG_CONTENT_TEMPLATE_SEQUENCE not in self.identifier:
            return None
        self._sequence = self.identifier[TAG_CONTENT_TEMPLATE_SEQUENCE].value
        return len(self._sequence) if self._sequence else 0

    def item_text(self, tag: int) -> str | None:
        if self._sequence is None:
            self.template_items()
        return _text(self._sequence[0], tag)

    def echo_keys(self) -> EchoKeys:
        return request_keys(self.identifier)


# --- the simple reader ------------------------------------------------------------------

_U16x2 = struct.Struct("<HH").unpack_from
_U16 = struct.Struct("<H").unpack_from
_U32 = struct.Struct("<I").unpack_from
_UNDEFINED = 0xFFFFFFFF
_ITEM = 0xFFFEE000
_ITEM_END = 0xFFFEE00D
_SEQUENCE_END = 0xFFFEE0DD
_CHARSETS = frozenset({"", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192"})
_MAX_LO = 64
_MAX_CS = 16
_VRS = frozenset(str(vr) for vr in VR if len(str(vr)) == 2)


class _Unsupported(Exception):
    """Outside the simple reader's cases: let pydicom read it."""


@dataclass(frozen=True, slots=True)
class ParsedRequest:
    """A request read by ``parse_simple``: the values the rules need, and the echo keys."""

    patient_id: str | None
    issuer: str | None
    items: int | None
    mapping_resource: str | None
    template_id: str | None
    keys: EchoKeys

    def text(self, tag: int) -> str | None:
        return self.patient_id if tag == TAG_PATIENT_ID else self.issuer

    def template_items(self) -> int | None:
        return self.items

    def item_text(self, tag: int) -> str | None:
        return self.mapping_resource if tag == TAG_MAPPING_RESOURCE else self.template_id

    def echo_keys(self) -> EchoKeys:
        return self.keys


_PLAIN = bytes(b for b in range(0x20, 0x7F) if b != 0x5C)  # printable ASCII but backslash


def _plain(data: bytes, start: int, end: int, limit: int) -> str:
    """A single printable-ASCII value, stripped as pydicom and the rules strip it."""
    raw = data[start:end]
    if end - start > limit or raw.translate(None, _PLAIN):
        raise _Unsupported("not a plain single value")
    return raw.decode("ascii").strip()


class _Reader:
    """Walks the elements of one data set (or item) of a request identifier."""

    __slots__ = ("data", "implicit")

    def __init__(self, data: bytes, implicit: bool) -> None:
        self.data = data
        self.implicit = implicit

    def header(self, pos: int) -> tuple[int, str | None, int, int]:
        """(tag, VR or None if implicit, value length, value start) of the element at pos."""
        data = self.data
        if pos + 8 > len(data):
            raise _Unsupported("truncated element")
        group, number = _U16x2(data, pos)
        tag = group << 16 | number
        if self.implicit or group == 0xFFFE:
            return tag, None, _U32(data, pos + 4)[0], pos + 8
        vr = data[pos + 4 : pos + 6].decode("latin-1")
        if vr not in _VRS:
            raise _Unsupported("unknown VR")
        if vr in LONG_VRS:
            if pos + 12 > len(data):
                raise _Unsupported("truncated element")
            return tag, vr, _U32(data, pos + 8)[0], pos + 12
        return tag, vr, _U16(data, pos + 6)[0], pos + 8

    def end_of(self, tag: int, vr: str | None, length: int, start: int) -> int:
        """Where the value starting at ``start`` ends (a whole sequence if undefined)."""
        if length != _UNDEFINED:
            end = start + length
            if end > len(self.data):
                raise _Unsupported("value runs past the end")
            return end
        if (vr or _dictionary_vr(tag)) != "SQ":
            raise _Unsupported("undefined length outside a sequence")
        return self.skip_items(start)[0]

    def skip_items(self, pos: int) -> tuple[int, int]:
        """(end, item count) of an undefined-length sequence whose items start at pos."""
        count = 0
        while True:
            tag, _, length, start = self.header(pos)
            if tag == _SEQUENCE_END:
                return start, count
            if tag != _ITEM:
                raise _Unsupported("not an item")
            count += 1
            pos = self.item_end(length, start)

    def item_end(self, length: int, start: int) -> int:
        if length != _UNDEFINED:
            end = start + length
            if end > len(self.data):
                raise _Unsupported("item runs past the end")
            return end
        pos = start
        while True:
            tag, vr, length, value = self.header(pos)
            if tag == _ITEM_END:
                return value
            pos = self.end_of(tag, vr, length, value)

    def items(self, start: int, end: int | None) -> list[tuple[int, int]]:
        """(start, end) of each item's elements, for a sequence value at start."""
        found: list[tuple[int, int]] = []
        pos = start
        while end is None or pos < end:
            tag, _, length, value = self.header(pos)
            if end is None and tag == _SEQUENCE_END:
                return found
            if tag != _ITEM:
                raise _Unsupported("not an item")
            pos = self.item_end(length, value)
            found.append((value, pos if length != _UNDEFINED else pos - 8))
        if pos != end:
            raise _Unsupported("sequence length mismatch")
        return found

    def template_item(self, start: int, end: int) -> tuple[str | None, str | None]:
        """Mapping Resource and Template Identifier of a Content Template Sequence item."""
        resource = template_id = None
        pos = start
        while pos < end:
            tag, vr, length, value = self.header(pos)
            if tag in (TAG_MAPPING_RESOURCE, TAG_TEMPLATE_IDENTIFIER):
                if length == _UNDEFINED or vr not in (None, "CS"):
                    raise _Unsupported("unusual template element")
                pos = value + length
                text = _plain(self.data, value, pos, _MAX_CS)
                if tag == TAG_MAPPING_RESOURCE:
                    resource = text
                else:
                    template_id = text
            else:
                pos = self.end_of(tag, vr, length, value)
        if pos != end:
            raise _Unsupported("item length mismatch")
        return resource, template_id


@lru_cache(maxsize=4096)
def _dictionary_vr(tag: int) -> str | None:
    entry = DicomDictionary.get(tag)
    return None if entry is None else str(entry[0])


def parse_simple(data: bytes, implicit: bool) -> ParsedRequest | None:
    """The request read without pydicom, or None when pydicom must read it."""
    try:
        return _parse(_Reader(data, implicit))[0]
    except _Unsupported:
        return None


@dataclass(frozen=True, slots=True)
class RequestShape:
    """A request read by ``parse_simple`` with its Patient ID's value cut out: the bytes
    before the Patient ID element and after its value. Another request with the same
    bytes around a Patient ID element of a plain non-empty value reads the same, but for
    that value (the elements before are the same bytes; those after are read relative to
    their own start, whatever the value's length)."""

    implicit: bool
    prefix: bytes
    suffix: bytes
    parsed: ParsedRequest

    def read(self, data: bytes) -> ParsedRequest | None:
        """``data`` read as ``parse_simple`` reads it, if it has this shape; else None."""
        prefix, suffix = self.prefix, self.suffix
        if not (data.startswith(prefix) and data.endswith(suffix)):
            return None
        start, value = len(prefix), len(prefix) + 8
        header = _PATIENT_ID_IMPLICIT if self.implicit else _PATIENT_ID_EXPLICIT
        if len(data) < value or not data.startswith(header, start):
            return None
        length = (_U32(data, start + 4) if self.implicit else _U16(data, start + 6))[0]
        end = value + length
        if length == 0 or end != len(data) - len(suffix):
            return None
        try:
            patient_id = _plain(data, value, end, _MAX_LO)
        except _Unsupported:
            return None
        return dataclasses.replace(self.parsed, patient_id=patient_id)


_PATIENT_ID_IMPLICIT = struct.pack("<HH", TAG_PATIENT_ID >> 16, TAG_PATIENT_ID & 0xFFFF)
_PATIENT_ID_EXPLICIT = _PATIENT_ID_IMPLICIT + b"LO"


def parse_shaped(data: bytes, implicit: bool) -> tuple[ParsedRequest, RequestShape | None] | None:
    """``parse_simple``, with the request's shape when it has a Patient ID of a plain
    non-empty value of defined length."""
    try:
        parsed, span = _parse(_Reader(data, implicit))
    except _Unsupported:
        return None
    if span is None:
        return parsed, None
    element, value, end = span
    if end == value:
        return parsed, None
    return parsed, RequestShape(implicit, data[:element], data[end:], parsed)


class RequestShapes:
    """The shapes of recent requests, most recent first, at most ``size``, of requests
    of at most ``max_bytes`` (inflated, if deflated); a ``RequestReader`` owns them."""

    def __init__(self, size: int = SHAPES, max_bytes: int = CACHE_MAX_BYTES) -> None:
        self._recent: deque[RequestShape] = deque(maxlen=size)
        self.max_bytes = max_bytes

    def __len__(self) -> int:
        return len(self._recent)

    def parse(self, data: bytes, implicit: bool) -> ParsedRequest | None:
        """``parse_simple``, by a known shape when one fits; a new shape is kept."""
        if len(data) > self.max_bytes:
            return parse_simple(data, implicit)
        recent = self._recent
        for shape in recent:
            if shape.implicit is implicit and (parsed := shape.read(data)) is not None:
                if shape is not recent[0]:
                    recent.remove(shape)
                    recent.appendleft(shape)
                return parsed
        found = parse_shaped(data, implicit)
        if found is None:
            return None
        parsed, new = found
        if new is not None:
            recent.appendleft(new)
        return parsed

    def clear(self) -> None:
        self._recent.clear()


def _parse(reader: _Reader) -> tuple[ParsedRequest, tuple[int, int, int] | None]:
    """The request, and where its Patient ID is: (element, value, end of value)."""
    data = reader.data
    span: tuple[int, int, int] | None = None
    values: dict[int, str] = {}
    keys: list[tuple[int, str]] = []
    items: int | None = None
    resource = template_id = None
    pos, previous = 0, -1
    while pos < len(data):
        tag, vr, length, value = reader.header(pos)
        group = tag >> 16
        if tag <= previous or group in (0, 2) or group & 1 or tag & 0xFFFF == 0:
            raise _Unsupported("out of order, command, meta, group length or private element")
        previous = tag
        known = _dictionary_vr(tag)
        if known is None or " " in known or (vr is not None and vr != known):
            raise _Unsupported("not a plain data dictionary element")
        if tag == TAG_CONTENT_TEMPLATE_SEQUENCE:
            end = None if length == _UNDEFINED else value + length
            found = reader.items(value, end)
            items = len(found)
            if found:
                resource, template_id = reader.template_item(*found[0])
            pos = reader.end_of(tag, known, length, value)
            continue
        element, pos = pos, reader.end_of(tag, known, length, value)
        if tag in (TAG_PATIENT_ID, TAG_ISSUER):
            values[tag] = _plain(data, value, pos, _MAX_LO)
            if tag == TAG_PATIENT_ID and length != _UNDEFINED and (vr or "LO") == "LO":
                span = (element, value, pos)
        elif (
            tag == TAG_SPECIFIC_CHARACTER_SET and _plain(data, value, pos, _MAX_CS) not in _CHARSETS
        ):
            raise _Unsupported("character set")
        if tag in _CONTENT_KEYS:
            continue
        if tag in _ECHOED_ANY_VALUE or length == 0:
            keys.append((tag, known))
        else:
            raise _Unsupported("a return key with a value")
    if pos != len(data):
        raise _Unsupported("trailing bytes")
    parsed = ParsedRequest(
        values.get(TAG_PATIENT_ID),
        values.get(TAG_ISSUER),
        items,
        resource,
        template_id,
        tuple(keys),
    )
    return parsed, span


def read_view(
    data: bytes, transfer_syntax: str, max_inflated: int, shapes: RequestShapes | None = None
) -> ParsedRequest | DatasetView | None:
    """A view of the identifier for the rules; None when it cannot be decoded. With
    ``shapes`` the simple reader goes by (and keeps) the shapes of recent requests."""
    try:
        if transfer_syntax in LITTLE_ENDIAN_SYNTAXES:
            plain = inflate(data, max_inflated) if transfer_syntax == DEFLATED else data
            implicit = transfer_syntax == IMPLICIT
            if shapes is not None:
                simple = shapes.parse(plain, implicit)
            else:
                simple = parse_simple(plain, implicit)
            if simple is not None:
                return simple
        return DatasetView(read_identifier(data, transfer_syntax, max_inflated))
    except UndecodableIdentifier as exc:
        log.debug("undecodable identifier: %s", exc)
        return None


class RequestReader:
    """Reads request identifiers; owns the cache of recent outcomes and of request shapes."""

    def __init__(self, *, max_inflated: int = MAX_INFLATED, cache_size: int = CACHE_SIZE) -> None:
        self.max_inflated = max_inflated
        self._cached: Callable[[bytes, str, str], Query | Answer] = lru_cache(maxsize=cache_size)(
            self._read_small
        )
        # Shapes of small requests only (at most CACHE_MAX_BYTES each), which are read on
        # the event loop's thread: larger ones may be read on another (``QueryService``).
        self._shapes = RequestShapes()

    def read(self, data: bytes | None, transfer_syntax: str, sop_class_uid: str) -> Query | Answer:
        """The Query, or the failure answer, for an identifier (None: none was sent)."""
        if data is None:
            return check_request(None, sop_class_uid)
        if len(data) <= CACHE_MAX_BYTES:
            return self._cached(data, transfer_syntax, sop_class_uid)
        return self._read(data, transfer_syntax, sop_class_uid)

    def _read_small(self, data: bytes, transfer_syntax: str, sop_class_uid: str) -> Query | Answer:
        return self._read(data, transfer_syntax, sop_class_uid, self._shapes)

    def _read(
        self,
        data: bytes,
        transfer_syntax: str,
        sop_class_uid: str,
        shapes: RequestShapes | None = None,
    ) -> Query | Answer:
        try:
            view = read_view(data, transfer_syntax, self.max_inflated, shapes)
            return check_request(view, sop_class_uid)
        except RecursionError:  # sequences nested deeper than the stack: undecodable too
            log.debug("undecodable identifier: sequences nested too deep")
            return check_request(None, sop_class_uid)

    def clear(self) -> None:
        """Forget every request read."""
        self._cached.cache_clear()  # type: ignore[attr-defined]
        self._shapes.clear()
