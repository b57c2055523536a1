"""Identifier data sets to and from bytes in the negotiated transfer syntax (PS3.5 §10, A.5).

The SCP negotiates Implicit VR Little Endian, Explicit VR Little Endian and Deflated
Explicit VR Little Endian. Deflated is Explicit VR Little Endian compressed with raw
deflate (RFC 1951, no zlib header); like pynetdicom, an odd-length deflate stream gets
one trailing NUL so that both engines send the same bytes. ``write_identifier`` is
pydicom's own writer, the reference the project's byte renderer must match exactly.
"""

from __future__ import annotations

import zlib
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from rpi_async.dicom.uids import TransferSyntax

IMPLICIT = TransferSyntax.IMPLICIT_VR_LE.value
EXPLICIT = TransferSyntax.EXPLICIT_VR_LE.value
DEFLATED = TransferSyntax.DEFLATED_EXPLICIT_VR_LE.value
# The transfer syntaxes whose identifiers this project encodes and decodes itself.
LITTLE_ENDIAN_SYNTAXES = frozenset({IMPLICIT, EXPLICIT, DEFLATED})


class UndecodableIdentifier(Exception):
    """The identifier bytes are not a data set in the negotiated transfer syntax."""


def is_implicit(transfer_syntax: str) -> bool:
    return transfer_syntax == IMPLICIT


def deflate(data: bytes) -> bytes:
    """Raw deflate, padded to even length with one NUL (as pynetdicom does)."""
    deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
    out = deflater.compress(data) + deflater.flush()
    return out + b"\x00" if len(out) % 2 else out


def inflate(data: bytes, max_inflated: int) -> bytes:
    """Undo ``deflate``; UndecodableIdentifier if corrupt or larger than ``max_inflated``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, max_inflated)
    except zlib.error as exc:
        raise UndecodableIdentifier(f"deflated identifier is corrupt: {exc}") from None
    if inflater.unconsumed_tail:
        raise UndecodableIdentifier("inflated identifier exceeds the size limit")
    return out


def read_identifier(data: bytes, transfer_syntax: str, max_inflated: int) -> Dataset:
    """Parse ``data``; element values stay raw until used (pydicom reads them lazily)."""
    if transfer_syntax == DEFLATED:
        data = inflate(data, max_inflated)
    try:
        return read_dataset(BytesIO(data), transfer_syntax == IMPLICIT, True)
    except Exception as exc:  # pydicom raises many types for malformed input
        raise UndecodableIdentifier(f"identifier cannot be parsed: {exc}") from None


def write_identifier(ds: Dataset, transfer_syntax: str) -> bytes:
    """Encode ``ds`` with pydicom's writer, as pynetdicom does (``dsutils.encode``)."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = transfer_syntax == IMPLICIT
    write_dataset(fp, ds)
    data = fp.getvalue()
    return deflate(data) if transfer_syntax == DEFLATED else data
