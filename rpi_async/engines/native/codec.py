"""Identifier data sets to and from bytes in a negotiated transfer syntax (PS3.5 §10)."""

from __future__ import annotations

import zlib
from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset
from pydicom.filewriter import write_dataset

from rpi_async.dicom.uids import TransferSyntax

_IMPLICIT = TransferSyntax.IMPLICIT_VR_LE.value
_DEFLATED = TransferSyntax.DEFLATED_EXPLICIT_VR_LE.value


class UndecodableIdentifier(Exception):
    """The identifier bytes are not a data set in the negotiated transfer syntax."""


def decode_identifier(data: bytes, transfer_syntax: str, max_inflated: int) -> Dataset:
    """Parse ``data``; element values stay raw until used (pydicom reads them lazily)."""
    if transfer_syntax == _DEFLATED:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            data = inflater.decompress(data, max_inflated)
        except zlib.error as exc:
            raise UndecodableIdentifier(f"deflated identifier is corrupt: {exc}") from None
        if inflater.unconsumed_tail:
            raise UndecodableIdentifier("inflated identifier exceeds the size limit")
    try:
        return read_dataset(BytesIO(data), transfer_syntax == _IMPLICIT, True)
    except Exception as exc:  # pydicom raises many types for malformed input
        raise UndecodableIdentifier(f"identifier cannot be parsed: {exc}") from None


def encode_identifier(ds: Dataset, transfer_syntax: str) -> bytes:
    """Encode a response identifier as pynetdicom does, so both engines send the same bytes."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = transfer_syntax == _IMPLICIT
    write_dataset(fp, ds)
    data = fp.getvalue()
    if transfer_syntax == _DEFLATED:
        deflater = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -zlib.MAX_WBITS)
        data = deflater.compress(data) + deflater.flush()
    return data
