"""Identifier data sets to and from bytes for the native engine (see ``dicom.transfer``)."""

from __future__ import annotations

from pydicom.dataset import Dataset

from rpi_async.dicom.transfer import UndecodableIdentifier, read_identifier, write_identifier


def decode_identifier(data: bytes, transfer_syntax: str, max_inflated: int) -> Dataset:
    """Parse ``data``; element values stay raw until used (pydicom reads them lazily)."""
    return read_identifier(data, transfer_syntax, max_inflated)


def encode_identifier(ds: Dataset, transfer_syntax: str) -> bytes:
    """Encode a response identifier as pynetdicom does, so both engines send the same bytes."""
    return write_identifier(ds, transfer_syntax)


__all__ = ["UndecodableIdentifier", "decode_identifier", "encode_identifier"]
