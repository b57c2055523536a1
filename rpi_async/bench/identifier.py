"""C-FIND identifiers, encoded by hand in Implicit and Explicit VR Little Endian (PS3.5 §7.1).

The generator builds one identifier per distinct patient ID before the run, in both transfer
syntaxes, so sending a query costs a dictionary look-up and a socket write. Two query
models are supported:

- ``rpi``: a Relevant Patient Information Query (PS3.4 Annex Q.2.1.1.3): Patient's Name,
  Patient ID, Issuer of Patient ID (when given), Patient's Birth Date and Sex as return
  keys, and the Content Template Sequence naming the requested template.
- ``patient-root``: a Patient Root Query/Retrieve FIND at PATIENT level (PS3.4 C.6.1), which
  other archives answer; used to load peers with the same population.

Elements are written in ascending tag order; text values are padded with a space to even
length; the sequence and its item have explicit lengths.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from rpi_async.dicom.uids import SopClass

PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"

# The root template each RPI SOP class returns by default (PS3.4 Annex Q, PS3.16).
DEFAULT_TEMPLATE: dict[SopClass, str] = {
    SopClass.GENERAL_RPI_QUERY: "9007",
    SopClass.BREAST_RPI_QUERY: "9000",
    SopClass.CARDIAC_RPI_QUERY: "3802",
}


class QueryModel(enum.StrEnum):
    RPI = "rpi"
    PATIENT_ROOT = "patient-root"


# (group << 16 | element, VR)
QUERY_RETRIEVE_LEVEL = (0x00080052, "CS")
MAPPING_RESOURCE = (0x00080105, "CS")
PATIENT_NAME = (0x00100010, "PN")
PATIENT_ID = (0x00100020, "LO")
ISSUER_OF_PATIENT_ID = (0x00100021, "LO")
PATIENT_BIRTH_DATE = (0x00100030, "DA")
PATIENT_SEX = (0x00100040, "CS")
CONTENT_TEMPLATE_SEQUENCE = (0x0040A504, "SQ")
TEMPLATE_IDENTIFIER = (0x0040DB00, "CS")
ITEM_TAG = 0xFFFEE000

# VRs whose Explicit VR encoding has a 4-byte length (PS3.5 Table 7.1-1).
_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)


def _text(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b" " if len(raw) % 2 else raw


def element(tag_vr: tuple[int, str], value: bytes, *, explicit: bool) -> bytes:
    """One data element; ``value`` must already have even length."""
    tag, vr = tag_vr
    head = struct.pack("<HH", tag >> 16, tag & 0xFFFF)
    if not explicit:
        return head + struct.pack("<I", len(value)) + value
    if vr in _LONG_VRS:
        return head + vr.encode("ascii") + b"\x00\x00" + struct.pack("<I", len(value)) + value
    return head + vr.encode("ascii") + struct.pack("<H", len(value)) + value


def _item(content: bytes) -> bytes:
    return struct.pack("<HHI", ITEM_TAG >> 16, ITEM_TAG & 0xFFFF, len(content)) + content


@dataclass(frozen=True, slots=True)
class IdentifierTemplate:
    """The fixed parts around Patient ID / Issuer, for one model and transfer syntax."""

    model: QueryModel
    template_id: str
    explicit: bool

    def encode(self, patient_id: str, issuer: str | None) -> bytes:
        ex = self.explicit
        if self.model is QueryModel.PATIENT_ROOT:
            out = element(QUERY_RETRIEVE_LEVEL, _text("PATIENT"), explicit=ex)
            out += element(PATIENT_NAME, b"", explicit=ex)
            out += element(PATIENT_ID, _text(patient_id), explicit=ex)
            if issuer is not None:
                out += element(ISSUER_OF_PATIENT_ID, _text(issuer), explicit=ex)
            return out
        out = element(PATIENT_NAME, b"", explicit=ex)
        out += element(PATIENT_ID, _text(patient_id), explicit=ex)
        if issuer is not None:
            out += element(ISSUER_OF_PATIENT_ID, _text(issuer), explicit=ex)
        out += element(PATIENT_BIRTH_DATE, b"", explicit=ex)
        out += element(PATIENT_SEX, b"", explicit=ex)
        item = element(MAPPING_RESOURCE, _text("DCMR"), explicit=ex) + element(
            TEMPLATE_IDENTIFIER, _text(self.template_id), explicit=ex
        )
        out += element(CONTENT_TEMPLATE_SEQUENCE, _item(item), explicit=ex)
        return out
