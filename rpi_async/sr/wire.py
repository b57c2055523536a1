"""Little Endian data elements as bytes (PS3.5 §7.1), the way pydicom's writer makes them.

Implicit VR: tag (group, element: two uint16), value length (uint32), value. Explicit VR:
tag, the two VR characters, then a uint16 length, or for the long VRs (OB OD OF OL OV OW
SQ SV UC UN UR UT UV) two zero bytes and a uint32 length. Values have even length: text
is padded with a space (PS3.5 §6.2).

A Dataset built in memory is written by pydicom with *defined* lengths everywhere: a
sequence element gets the length of its items, an item (FFFE,E000) the length of its
elements, and no delimitation items follow. So a content item's encoding is its
elements' encodings concatenated behind an item header, and a sequence's is its items'
behind the sequence header: the byte renderer builds from the leaves up.

Parts that never change (concept name and code sequences, the constant head of a content
item) are encoded once by pydicom itself (``chunk``) so they are identical to its output
by construction; only dates, numbers, texts and lengths are encoded per identifier.
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.tag import BaseTag

from rpi_async.sr.dsbuild import new_dataset

UTF8 = "ISO_IR 192"
LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
UL = struct.Struct("<I").pack
US = struct.Struct("<H").pack
ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000) Item
MAX_SHORT = 0xFFFF


class Fallback(Exception):
    """This identifier needs pydicom's writer (a value outside the byte renderer's cases)."""


def tag_bytes(tag: int) -> bytes:
    return struct.pack("<HH", tag >> 16, tag & 0xFFFF)


def prefix(tag: int, vr: str, explicit: bool) -> bytes:
    """Everything before the length: tag, and in Explicit VR the VR (and reserved bytes)."""
    if not explicit:
        return tag_bytes(tag)
    return tag_bytes(tag) + vr.encode("ascii") + (b"\x00\x00" if vr in LONG_VRS else b"")


class Element:
    """Encoder of one (tag, VR) in one VR mode; ``long`` means a uint32 length."""

    __slots__ = ("long", "prefix")

    def __init__(self, tag: int, vr: str, explicit: bool) -> None:
        self.prefix = prefix(tag, vr, explicit)
        self.long = not explicit or vr in LONG_VRS

    def encode(self, value: bytes) -> bytes:
        """The element holding ``value``, which must already have even length."""
        n = len(value)
        if self.long:
            return self.prefix + UL(n) + value
        if n > MAX_SHORT:
            raise Fallback("value too long for a 16-bit length")
        return self.prefix + US(n) + value

    def text(self, value: str) -> bytes:
        """An ASCII text value, space-padded; Fallback when it is not ASCII."""
        if not value.isascii():
            raise Fallback("non-ASCII value in a default-character-set VR")
        raw = value.encode("ascii")
        return self.encode(raw + b" " if len(raw) % 2 else raw)

    def utf8(self, value: str) -> bytes:
        """A value of a VR that follows Specific Character Set, space-padded."""
        raw = value.encode("utf-8")
        return self.encode(raw + b" " if len(raw) % 2 else raw)


def item(body: bytes) -> bytes:
    """A sequence item with a defined length."""
    return ITEM + UL(len(body)) + body


def chunk(elements: dict[BaseTag, DataElement], explicit: bool) -> bytes:
    """``elements`` (sorted by tag) as pydicom writes them, text in UTF-8 (ISO_IR 192).

    Text that is all ASCII encodes the same in every character set, so a chunk is
    valid in any identifier whose content is ASCII, and in any with ISO_IR 192.
    """
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = not explicit
    write_dataset(fp, new_dataset(dict(sorted(elements.items()))), parent_encoding=UTF8)
    return fp.getvalue()


def both(elements: dict[BaseTag, DataElement]) -> tuple[bytes, bytes]:
    """``chunk`` in (Implicit VR, Explicit VR)."""
    return chunk(elements, False), chunk(elements, True)


def ascii_strings(*values: Any) -> bool:
    """True when every string among ``values`` is ASCII."""
    return all(v.isascii() for v in values if isinstance(v, str))
