"""The per-query hook: what the QueryService reports about each query it serves.

Theory of operation. Both engines hand every C-FIND to ``QueryService.find``; that is
the one place that sees every query, so the operations features hang off it through
this small API, reached as ``self.stats.hooks`` (``ServerStats.hooks``):

    watch = self.stats.hooks.begin(peer, sop_name, identifier)   # never raises
    try:
        watch.admit()          # raises QueryShed (a StoreUnavailable, so A700) when
        ...                    # max_in_flight queries are already in flight
    except asyncio.CancelledError:
        watch.end(None)        # interrupted: give the slot back, audit it
        raise
    ...
    watch.end(int(result.status), result.template)

and, around the database lookup, ``self.stats.hooks.observe_store(seconds)``.

``end`` gives the in-flight slot back, observes the query latency histogram and submits
the audit record; it is idempotent. With nothing configured (the default ``QueryHooks()``)
a query costs two lock round trips for the in-flight count and nothing else.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

from rpi_async.dicom.uids import SOP_CLASS_BY_NAME
from rpi_async.errors import StoreUnavailable
from rpi_async.ops.audit import AuditTrail, QueryAudit
from rpi_async.ops.shedding import InFlightLimiter


class PeerLike(Protocol):
    @property
    def ae_title(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def port(self) -> int: ...


class Timings(Protocol):
    """Latency histograms (``ops.metrics.Timings``)."""

    def query(self, sop: str, seconds: float) -> None: ...

    def store(self, seconds: float) -> None: ...


class QueryShed(StoreUnavailable):
    """Refused at once: ``max_in_flight`` queries are already being served (A700)."""


SHED_MESSAGE = "Server busy: too many queries in flight"


def _request_keys(identifier: Any) -> tuple[str | None, str | None, str | None]:
    """(patient ID, issuer, template ID) from a request identifier, None where absent."""
    if identifier is None:
        return None, None, None
    try:
        pid = identifier.get("PatientID")
        issuer = identifier.get("IssuerOfPatientID")
        template = None
        seq = identifier.get("ContentTemplateSequence")
        if seq:
            template = seq[0].get("TemplateIdentifier")
    except Exception:  # undecodable values: audit what we have
        return None, None, None
    return (
        None if pid is None else str(pid).strip(),
        str(issuer).strip() or None if issuer is not None else None,
        None if template is None else str(template).strip(),
    )


class QueryWatch:
    """One query between ``begin`` and ``end``."""

    __slots__ = (
        "_ended",
        "_entered",
        "hooks",
        "identifier",
        "patient_id",
        "peer",
        "sop",
        "sop_class_uid",
        "started",
    )

    def __init__(
        self,
        hooks: QueryHooks,
        peer: PeerLike,
        sop: str,
        sop_class_uid: str,
        identifier: Any,
        patient_id: str | None,
    ) -> None:
        self.hooks = hooks
        self.peer = peer
        self.sop = sop
        self.sop_class_uid = sop_class_uid
        self.identifier = identifier
        self.patient_id = patient_id
        self.started = time.perf_counter()
        self._entered = False
        self._ended = False

    def admit(self) -> None:
        """Take an in-flight slot or raise QueryShed (answered A700 by the service)."""
        if not self._entered:
            if not self.hooks.limiter.try_enter():
                raise QueryShed(SHED_MESSAGE)
            self._entered = True

    def end(self, status: int | None, template: str | None = None) -> None:
        """The query is answered with ``status`` (None: interrupted). Idempotent."""
        if self._ended:
            return
        self._ended = True
        hooks = self.hooks
        if self._entered:
            hooks.limiter.leave()
        seconds = time.perf_counter() - self.started
        if hooks.timings is not None:
            hooks.timings.query(self.sop, seconds)
        if hooks.audit is not None:
            hooks.submit_audit(self, status, template, seconds)


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

    def begin(
        self,
        peer: PeerLike,
        sop: str,
        identifier: Any = None,
        *,
        sop_class_uid: str = "",
        patient_id: str | None = None,
    ) -> QueryWatch:
        """Start watching one query. ``identifier`` is the decoded request (or None);
        ``patient_id`` overrides what the identifier holds (for callers without one)."""
        return QueryWatch(self, peer, sop, sop_class_uid, identifier, patient_id)

    def observe_store(self, seconds: float) -> None:
        """One database lookup took ``seconds``."""
        if self.timings is not None:
            self.timings.store(seconds)

    def submit_audit(
        self, watch: QueryWatch, status: int | None, template: str | None, seconds: float
    ) -> None:
        assert self.audit is not None
        pid, issuer, requested = _request_keys(watch.identifier)
        if watch.patient_id is not None:
            pid = watch.patient_id
        sop_uid = watch.sop_class_uid
        if not sop_uid and watch.sop in SOP_CLASS_BY_NAME:
            sop_uid = str(SOP_CLASS_BY_NAME[watch.sop].value)
        peer = watch.peer
        self.audit.submit(
            QueryAudit(
                time=time.time(),
                calling_ae=peer.ae_title,
                called_ae=self.called_ae,
                peer_address=peer.address,
                peer_port=peer.port,
                sop=watch.sop,
                sop_class_uid=sop_uid,
                template=template or requested,
                patient_id=pid,
                issuer=issuer,
                status=status,
                duration=seconds,
            )
        )
