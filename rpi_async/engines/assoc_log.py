"""The one log line per association, shared by both engines."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from rpi_async.dicom.status import FindStatus

log = logging.getLogger("rpi_async.access")

# A-ASSOCIATE-RJ (source, reason) -> name (PS3.8 Table 9-21).
REJECT_REASONS: dict[tuple[int, int], str] = {
    (1, 1): "no-reason-given",
    (1, 2): "application-context-name-not-supported",
    (1, 3): "calling-ae-title-not-recognized",
    (1, 7): "called-ae-title-not-recognized",
    (2, 1): "no-reason-given",
    (2, 2): "protocol-version-not-supported",
    (3, 1): "temporary-congestion",
    (3, 2): "local-limit-exceeded",
}
# Counted (and logged) apart from the overall limit: the same A-ASSOCIATE-RJ fields
# (transient, presentation, local-limit-exceeded), caused by max_associations_per_peer.
PEER_LIMIT_REASON = "peer-limit-exceeded"


@dataclass
class AssociationRecord:
    """What the access log says about one association. No patient data in here."""

    peer: str
    started: float
    calling_ae: str = ""
    called_ae: str = ""
    sops: list[str] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    outcome: str = "closed"
    cancelled: set[int] = field(default_factory=set)  # Message IDs a C-CANCEL named
    refused_as: str | None = None  # rejection reason set by the access policy
    peer_slot: str | None = None  # peer address whose access slot this connection holds

    def line(self, ended: float) -> str:
        sops = ",".join(dict.fromkeys(self.sops)) or "-"
        statuses = ",".join(f"{s:04X}" for s in self.statuses) or "-"
        return (
            f"association {self.peer} {self.calling_ae or '?'}->{self.called_ae or '?'} "
            f"{self.outcome} in {(ended - self.started) * 1000:.1f} ms sop={sops} "
            f"statuses={statuses}"
        )


def status_name(status: int) -> str:
    try:
        return FindStatus(status).name
    except ValueError:
        return f"0x{status:04X}"
