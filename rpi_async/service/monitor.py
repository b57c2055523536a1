"""What the QueryService tells the operations features about each query.

The service defines this small interface and calls it; ``rpi_async.ops.hooks`` implements
it (in-flight limit, latency histograms, audit trail). The service never imports ``ops``:
the server plugs an implementation in. ``NullMonitor`` is the default: no limit, nothing
recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rpi_async.dicom.status import FindStatus
    from rpi_async.service.rules import AuditKeys


@dataclass(frozen=True, slots=True)
class Peer:
    """Who asked: calling AE title and network address."""

    ae_title: str
    address: str
    port: int


class QueryMonitor(Protocol):
    def admit(self) -> bool:
        """Take an in-flight slot for a query; False refuses it (answered A700)."""

    def release(self) -> None:
        """Give back the slot ``admit`` took."""

    def store_read(self, seconds: float) -> None:
        """One store lookup took ``seconds``."""

    def answered(
        self,
        peer: Peer,
        sop_class_uid: str,
        status: FindStatus | None,
        keys: AuditKeys,
        seconds: float,
    ) -> None:
        """A query ended with ``status`` (None: interrupted) after ``seconds``; ``keys``
        are what the request named, as far as it could be read."""


class NullMonitor:
    """Admits every query and records nothing."""

    def admit(self) -> bool:
        return True

    def release(self) -> None:
        pass

    def store_read(self, seconds: float) -> None:
        pass

    def answered(
        self,
        peer: Peer,
        sop_class_uid: str,
        status: FindStatus | None,
        keys: AuditKeys,
        seconds: float,
    ) -> None:
        pass
