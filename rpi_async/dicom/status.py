"""DIMSE status codes used by the RPI Query service (PS3.4 Annex Q.2.1.1.4, PS3.7 Annex C)."""

from __future__ import annotations

import enum


class FindStatus(enum.IntEnum):
    SUCCESS = 0x0000
    PENDING = 0xFF00
    CANCEL = 0xFE00
    OUT_OF_RESOURCES = 0xA700
    IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS = 0xA900
    UNABLE_TO_PROCESS = 0xC000
    MORE_THAN_ONE_MATCH = 0xC100
    UNABLE_TO_SUPPORT_TEMPLATE = 0xC200

    @property
    def category(self) -> str:
        if self is FindStatus.SUCCESS:
            return "Success"
        if self is FindStatus.PENDING:
            return "Pending"
        if self is FindStatus.CANCEL:
            return "Cancel"
        return "Failure"

    @property
    def label(self) -> str:
        return _LABELS[self]

    @classmethod
    def describe(cls, code: int) -> str:
        """Human text for any status code, ours or not."""
        try:
            status = cls(code)
        except ValueError:
            return f"0x{code:04X} (not defined for this service)"
        return f"0x{code:04X} {status.category}: {status.label}"


_LABELS: dict[FindStatus, str] = {
    FindStatus.SUCCESS: "Matching is complete",
    FindStatus.PENDING: "Match returned, more may follow",
    FindStatus.CANCEL: "Matching terminated due to Cancel request",
    FindStatus.OUT_OF_RESOURCES: "Refused: Out of resources",
    FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS: "Identifier does not match SOP class",
    FindStatus.UNABLE_TO_PROCESS: "Unable to process",
    FindStatus.MORE_THAN_ONE_MATCH: "More than one match found",
    FindStatus.UNABLE_TO_SUPPORT_TEMPLATE: "Unable to support requested template",
}


class EchoStatus(enum.IntEnum):
    SUCCESS = 0x0000
