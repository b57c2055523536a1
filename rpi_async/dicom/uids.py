"""UIDs of the services and transfer syntaxes this SCP negotiates (PS3.4 Annex Q, PS3.5)."""

from __future__ import annotations

import enum


class SopClass(enum.StrEnum):
    VERIFICATION = "1.2.840.10008.1.1"
    GENERAL_RPI_QUERY = "1.2.840.10008.5.1.4.37.1"
    BREAST_RPI_QUERY = "1.2.840.10008.5.1.4.37.2"
    CARDIAC_RPI_QUERY = "1.2.840.10008.5.1.4.37.3"


RPI_SOP_CLASSES: tuple[SopClass, ...] = (
    SopClass.GENERAL_RPI_QUERY,
    SopClass.BREAST_RPI_QUERY,
    SopClass.CARDIAC_RPI_QUERY,
)

# CLI / configuration short names for the RPI SOP classes.
SOP_CLASS_BY_NAME: dict[str, SopClass] = {
    "general": SopClass.GENERAL_RPI_QUERY,
    "breast": SopClass.BREAST_RPI_QUERY,
    "cardiac": SopClass.CARDIAC_RPI_QUERY,
}


class TransferSyntax(enum.StrEnum):
    IMPLICIT_VR_LE = "1.2.840.10008.1.2"
    EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
    DEFLATED_EXPLICIT_VR_LE = "1.2.840.10008.1.2.1.99"
    EXPLICIT_VR_BE = "1.2.840.10008.1.2.2"


# Our preference order when a peer proposes several (PS3.8 §9.3.2.2: the acceptor picks one).
PREFERRED_TRANSFER_SYNTAXES: tuple[TransferSyntax, ...] = (
    TransferSyntax.EXPLICIT_VR_LE,
    TransferSyntax.IMPLICIT_VR_LE,
    TransferSyntax.DEFLATED_EXPLICIT_VR_LE,
)

APPLICATION_CONTEXT_NAME = "1.2.840.10008.3.1.1.1"
