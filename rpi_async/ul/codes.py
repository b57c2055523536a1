"""Code values of the DICOM Upper Layer protocol (PS3.8 §9.3, PS3.7 Annex D.3.3).

Every number that goes on the wire as a type, result, source or reason lives here as
a named enum, so the codec and the state machine never carry bare magic numbers.
"""

from __future__ import annotations

import enum


class PduType(enum.IntEnum):
    """PDU-type byte (PS3.8 §9.3.1)."""

    A_ASSOCIATE_RQ = 0x01
    A_ASSOCIATE_AC = 0x02
    A_ASSOCIATE_RJ = 0x03
    P_DATA_TF = 0x04
    A_RELEASE_RQ = 0x05
    A_RELEASE_RP = 0x06
    A_ABORT = 0x07


class ItemType(enum.IntEnum):
    """Item-type byte of the variable items and sub-items (PS3.8 §9.3.2-9.3.3, PS3.7 D.3.3)."""

    APPLICATION_CONTEXT = 0x10
    PRESENTATION_CONTEXT_RQ = 0x20
    PRESENTATION_CONTEXT_AC = 0x21
    ABSTRACT_SYNTAX = 0x30
    TRANSFER_SYNTAX = 0x40
    USER_INFORMATION = 0x50
    MAXIMUM_LENGTH = 0x51
    IMPLEMENTATION_CLASS_UID = 0x52
    ASYNCHRONOUS_OPERATIONS_WINDOW = 0x53
    ROLE_SELECTION = 0x54
    IMPLEMENTATION_VERSION_NAME = 0x55
    SOP_CLASS_EXTENDED_NEGOTIATION = 0x56
    SOP_CLASS_COMMON_EXTENDED_NEGOTIATION = 0x57
    USER_IDENTITY_RQ = 0x58
    USER_IDENTITY_AC = 0x59


class AbortSource(enum.IntEnum):
    """A-ABORT Source field (PS3.8 Table 9-26)."""

    SERVICE_USER = 0
    RESERVED = 1
    SERVICE_PROVIDER = 2


class AbortReason(enum.IntEnum):
    """A-ABORT Reason/Diag. field, significant when the source is the provider (Table 9-26)."""

    NOT_SPECIFIED = 0
    UNRECOGNIZED_PDU = 1
    UNEXPECTED_PDU = 2
    UNRECOGNIZED_PDU_PARAMETER = 4
    UNEXPECTED_PDU_PARAMETER = 5
    INVALID_PDU_PARAMETER_VALUE = 6


class RejectResult(enum.IntEnum):
    """A-ASSOCIATE-RJ Result field (PS3.8 Table 9-21)."""

    PERMANENT = 1
    TRANSIENT = 2


class RejectSource(enum.IntEnum):
    """A-ASSOCIATE-RJ Source field (PS3.8 Table 9-21)."""

    SERVICE_USER = 1
    SERVICE_PROVIDER_ACSE = 2
    SERVICE_PROVIDER_PRESENTATION = 3


class UserRejectReason(enum.IntEnum):
    """Reason/Diag. when the source is the service-user (Table 9-21)."""

    NO_REASON_GIVEN = 1
    APPLICATION_CONTEXT_NAME_NOT_SUPPORTED = 2
    CALLING_AE_TITLE_NOT_RECOGNIZED = 3
    CALLED_AE_TITLE_NOT_RECOGNIZED = 7


class AcseRejectReason(enum.IntEnum):
    """Reason/Diag. when the source is the service-provider, ACSE related (Table 9-21)."""

    NO_REASON_GIVEN = 1
    PROTOCOL_VERSION_NOT_SUPPORTED = 2


class PresentationRejectReason(enum.IntEnum):
    """Reason/Diag. when the source is the service-provider, presentation related (Table 9-21)."""

    TEMPORARY_CONGESTION = 1
    LOCAL_LIMIT_EXCEEDED = 2


_REJECT_REASON_ENUMS: dict[RejectSource, type[enum.IntEnum]] = {
    RejectSource.SERVICE_USER: UserRejectReason,
    RejectSource.SERVICE_PROVIDER_ACSE: AcseRejectReason,
    RejectSource.SERVICE_PROVIDER_PRESENTATION: PresentationRejectReason,
}

# A-ASSOCIATE-RJ (source, reason) -> name, e.g. (1, 3) -> "calling-ae-title-not-recognized".
REJECT_REASONS: dict[tuple[int, int], str] = {
    (int(source), int(reason)): reason.name.lower().replace("_", "-")
    for source, reasons in _REJECT_REASON_ENUMS.items()
    for reason in reasons
}


def reject_reason(source: int, reason: int) -> str:
    """The name of an A-ASSOCIATE-RJ reason (PS3.8 Table 9-21)."""
    return REJECT_REASONS.get((source, reason), f"source-{source}-reason-{reason}")


class ContextResult(enum.IntEnum):
    """Presentation context Result/Reason in an A-ASSOCIATE-AC (PS3.8 Table 9-18)."""

    ACCEPTANCE = 0
    USER_REJECTION = 1
    NO_REASON = 2
    ABSTRACT_SYNTAX_NOT_SUPPORTED = 3
    TRANSFER_SYNTAXES_NOT_SUPPORTED = 4


class UserIdentityType(enum.IntEnum):
    """User-Identity-Type of the user identity sub-item (PS3.7 Table D.3-14)."""

    USERNAME = 1
    USERNAME_AND_PASSCODE = 2
    KERBEROS = 3
    SAML = 4
    JWT = 5


# Protocol version bit 0 = version 1, the only one defined (PS3.8 Table 9-11).
PROTOCOL_VERSION_1 = 0x0001

# Message control header bits of a PDV (PS3.8 Annex E.2).
MCH_COMMAND = 0x01
MCH_LAST = 0x02
