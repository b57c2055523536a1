"""The operations features as the QueryService's monitor (``service.monitor.QueryMonitor``).

Theory of operation. Both engines hand every C-FIND to ``QueryService.find``, the one
place that sees every query. The service calls the monitor the server plugs in:

    monitor.admit()                 # an in-flight slot, or False: answered A700 at once
    monitor.store_read(seconds)     # around the store lookup
    monitor.release()               # the slot goes back
    monitor.answered(peer, sop_class_uid, status, keys, seconds)  # status None: interrupted

``QueryHooks`` implements it: the in-flight limit (``ops.shedding``), the latency
histograms (``ops.metrics``) and the audit trail (``ops.audit``), each only when
configured. The audit record takes the patient ID, issuer and template from the keys the
request named (``rules.AuditKeys``, read as far as they could be, whatever the
status), so every engine audits the same record for the same request.
"""

from __future__ import annotations

import time
from typing import Protocol

from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import SOP_CLASS_BY_NAME
from rpi_async.ops.audit import AuditTrail, QueryAudit
from rpi_async.ops.shedding import InFlightLimiter
from rpi_async.service.monitor import Peer
from rpi_async.service.rules import AuditKeys

_SOP_NAMES: dict[str, str] = {uid.value: name for name, uid in SOP_CLASS_BY_NAME.items()}


class Timings(Protocol):
    """Latency histograms (``ops.metrics.Timings``)."""

    def query(self, sop: str, seconds: float) -> None: ...

    def store(self, seconds: float) -> None: ...


class QueryHooks:
    """Shedding, latency histograms and audit, as configured; see the module docstring."""

    def __init__(
        self,
        limiter: InFlightLimiter | None = None,
        *,
        timings: Timings | None = None,
        audit: AuditTrail | None = None,
        called_ae: str = "",
    ) -> None:
        self.limiter = limiter if limiter is not None else InFlightLimiter()
        self.timings = timings
        self.audit = audit
        self.called_ae = called_ae

    def admit(self) -> bool:
        return self.limiter.try_enter()

    def release(self) -> None:
        self.limiter.leave()

    def store_read(self, seconds: float) -> None:
        if self.timings is not None:
            self.timings.store(seconds)

    def answered(
        self,
        peer: Peer,
        sop_class_uid: str,
        status: FindStatus | None,
        keys: AuditKeys,
        seconds: float,
    ) -> None:
        sop = _SOP_NAMES.get(sop_class_uid, "unknown")
        if self.timings is not None:
            self.timings.query(sop, seconds)
        if self.audit is None:
            return
        self.audit.submit(
            QueryAudit(
                time=time.time(),
                calling_ae=peer.ae_title,
                called_ae=self.called_ae,
                peer_address=peer.address,
                peer_port=peer.port,
                sop=sop,
                sop_class_uid=sop_class_uid,
                template=keys.template_id,
                patient_id=keys.patient_id,
                issuer=keys.issuer,
                status=None if status is None else int(status),
                duration=seconds,
            )
        )
