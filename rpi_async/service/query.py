"""QueryService: one RPI C-FIND, from request identifier to response (PS3.4 Annex Q).

Theory of operation. The engines hand the service the request identifier and the SOP
class: pynetdicom decoded (``find``, answered with a Dataset), the native engine as the
bytes it received (``find_encoded``, answered with the response identifier's bytes). The
service checks the identifier against PS3.4 Q.2.1.1.3 with one set of rules
(``service.request.validate``), looks the patient up in the store, renders the requested
template and applies the status rules of PS3.4 Q.2.1.1.4 (the project's spec §3):

- exactly one match: Pending FF00 with the identifier; the engine then sends 0000;
- no match: Success 0000 alone;
- several matches (same Patient ID under several issuers, no issuer given): C100;
- template not supported for the SOP class: C200;
- missing Patient ID or Content Template Sequence, or a Mapping Resource other than
  DCMR: A900 with Offending Element and Error Comment;
- an identifier that cannot be decoded: C000 with Error Comment;
- store unavailable, overloaded or too slow: A700;
- a C-CANCEL that arrived before the answer: FE00.

The byte path never builds a pydicom Dataset for the common requests: the request is
read by a small parser (cached per distinct request), the patient comes from the store's
compact copy, and ``render_identifier_bytes`` encodes the response directly, byte for
byte what pydicom would write for ``find``'s Dataset. Neither call raises: whatever goes
wrong becomes a status. Patient identifiers are logged only at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import SOP_CLASS_BY_NAME
from rpi_async.errors import StoreUnavailable
from rpi_async.ops.hooks import QueryShed, QueryWatch
from rpi_async.service.request import (
    UNDECODABLE,
    DatasetView,
    Failure,
    parse_request,
    validate,
)
from rpi_async.service.stats import ServerStats
from rpi_async.sr.render import render_identifier
from rpi_async.sr.render_bytes import render_identifier_bytes
from rpi_async.store.reader import PatientStore

log = logging.getLogger("rpi_async.dimse")

MAX_INFLATED = 16 * 1024 * 1024  # default limit of a deflated identifier, inflated
_C100 = "More than one match: give Issuer of Patient ID"

SOP_NAMES: dict[str, str] = {uid.value: name for name, uid in SOP_CLASS_BY_NAME.items()}


@dataclass(frozen=True, slots=True)
class Peer:
    """Who asked: calling AE title and network address."""

    ae_title: str
    address: str
    port: int


@dataclass(frozen=True, slots=True)
class FindResult:
    """The answer to one C-FIND. A Pending result carries the identifier."""

    status: FindStatus
    identifier: Dataset | None = None
    error_comment: str | None = None
    offending_elements: tuple[BaseTag, ...] = ()
    template: str | None = None

    def status_dataset(self) -> Dataset:
        """Status as a Dataset, with Error Comment and Offending Element when present."""
        ds = Dataset()
        ds.Status = int(self.status)
        if self.error_comment:
            ds.ErrorComment = self.error_comment[:64]
        if self.offending_elements:
            ds.OffendingElement = list(self.offending_elements)
        return ds


@dataclass(frozen=True, slots=True)
class EncodedFindResult:
    """The answer to one C-FIND with the identifier encoded in the request's transfer syntax."""

    status: FindStatus
    identifier: bytes | None = None
    error_comment: str | None = None
    offending_elements: tuple[BaseTag, ...] = ()
    template: str | None = None


def _failure(failure: Failure) -> FindResult:
    return FindResult(failure.status, None, failure.error_comment, failure.offending_elements)


_zone: list[tuple[int, tzinfo | None]] = [(-1, None)]  # (second, local zone then)


def local_now() -> datetime:
    """``datetime.now().astimezone()``, the local zone looked up once per second.

    (Finding the local zone costs a ``localtime`` call and a timezone object; a busy
    server asks for the time thousands of times a second.)
    """
    now = time.time()
    second = int(now)
    cached_second, zone = _zone[0]
    if cached_second != second or zone is None:
        zone = datetime.fromtimestamp(now).astimezone().tzinfo
        _zone[0] = (second, zone)
    return datetime.fromtimestamp(now, zone)


class QueryService:
    """Answers RPI C-FINDs from a patient store. Shared by every engine."""

    def __init__(
        self,
        store: PatientStore,
        *,
        stats: ServerStats | None = None,
        clock: Callable[[], datetime] = local_now,
        query_timeout: float | None = None,
    ) -> None:
        self.store = store
        self.stats = stats if stats is not None else ServerStats()
        self._clock = clock
        self.query_timeout = query_timeout

    async def find(
        self,
        identifier: Dataset | None,
        sop_class_uid: str,
        peer: Peer,
        *,
        is_cancelled: Callable[[], bool] = lambda: False,
    ) -> FindResult:
        """Answer one query. ``identifier`` None means it could not be decoded."""
        sop = SOP_NAMES.get(str(sop_class_uid), "unknown")
        watch = self.stats.hooks.begin(peer, sop, identifier, sop_class_uid=str(sop_class_uid))
        try:
            watch.admit()
            async with asyncio.timeout(self.query_timeout):
                result = await self._find(identifier, sop_class_uid, is_cancelled, watch)
        except asyncio.CancelledError:
            watch.end(None)
            raise
        except Exception as exc:  # the engine must get a status, whatever happened
            result = FindResult(*self._status_for(exc, peer))
        self.stats.query_answered(sop, int(result.status))
        watch.end(int(result.status), result.template)
        return result

    async def find_encoded(
        self,
        identifier: bytes | None,
        transfer_syntax: str,
        sop_class_uid: str,
        peer: Peer,
        *,
        is_cancelled: Callable[[], bool] = lambda: False,
        max_inflated: int = MAX_INFLATED,
    ) -> EncodedFindResult:
        """Answer one query from the identifier as received (None: none was sent).

        The response identifier comes back encoded in ``transfer_syntax``, identical to
        what pydicom would write for ``find``'s Dataset. A deflated identifier may inflate
        to at most ``max_inflated`` bytes.
        """
        sop = SOP_NAMES.get(str(sop_class_uid), "unknown")
        watch = self.stats.hooks.begin(peer, sop, None, sop_class_uid=str(sop_class_uid))
        try:
            watch.admit()
            async with asyncio.timeout(self.query_timeout):
                result = await self._find_encoded(
                    identifier,
                    transfer_syntax,
                    sop_class_uid,
                    peer,
                    is_cancelled,
                    max_inflated,
                    watch,
                )
        except asyncio.CancelledError:
            watch.end(None)
            raise
        except Exception as exc:  # the engine must get a status, whatever happened
            result = EncodedFindResult(*self._status_for(exc, peer))
        self.stats.query_answered(sop, int(result.status))
        watch.end(int(result.status), result.template)
        return result

    @staticmethod
    def _status_for(exc: Exception, peer: Peer) -> tuple[FindStatus, None, str]:
        """(status, no identifier, error comment) for a failure during a query."""
        if isinstance(exc, QueryShed):
            return FindStatus.OUT_OF_RESOURCES, None, str(exc)  # counted, not logged
        if isinstance(exc, TimeoutError):
            log.warning("query from %s timed out: answered A700", peer.ae_title)
            return FindStatus.OUT_OF_RESOURCES, None, "Query timed out"
        if isinstance(exc, StoreUnavailable):
            log.warning("query from %s answered A700: %s", peer.ae_title, exc)
            return FindStatus.OUT_OF_RESOURCES, None, str(exc)
        log.error("query from %s failed: %s: %s", peer.ae_title, type(exc).__name__, exc)
        log.debug("query failure detail", exc_info=True)
        return FindStatus.UNABLE_TO_PROCESS, None, "Unable to process"

    async def _find(
        self,
        identifier: Dataset | None,
        sop_class_uid: str,
        is_cancelled: Callable[[], bool],
        watch: QueryWatch,
    ) -> FindResult:
        view = None if identifier is None else DatasetView(identifier)
        query = validate(view, sop_class_uid)
        if isinstance(query, Failure):
            return _failure(query)
        log.debug(
            "lookup patient_id=%r issuer=%r template=%s",
            query.patient_id,
            query.issuer,
            query.template_id,
        )
        started = time.perf_counter()
        records = await self.store.lookup(query.patient_id, query.issuer)
        self.stats.hooks.observe_store(time.perf_counter() - started)
        tid = query.template_id
        if is_cancelled():
            return FindResult(FindStatus.CANCEL, template=tid)
        if not records:
            return FindResult(FindStatus.SUCCESS, template=tid)
        if len(records) > 1:
            return FindResult(FindStatus.MORE_THAN_ONE_MATCH, error_comment=_C100, template=tid)
        response = render_identifier(
            records[0], query.template, query.request, observation_datetime=self._clock()
        )
        return FindResult(FindStatus.PENDING, response, template=tid)

    async def _find_encoded(
        self,
        identifier: bytes | None,
        transfer_syntax: str,
        sop_class_uid: str,
        peer: Peer,
        is_cancelled: Callable[[], bool],
        max_inflated: int,
        watch: QueryWatch,
    ) -> EncodedFindResult:
        query = parse_request(identifier, transfer_syntax, sop_class_uid, max_inflated)
        if isinstance(query, Failure):
            if query.error_comment == UNDECODABLE and identifier is not None:
                log.info("undecodable identifier from %s", peer.address)
            return EncodedFindResult(
                query.status, None, query.error_comment, query.offending_elements
            )
        log.debug(
            "lookup patient_id=%r issuer=%r template=%s",
            query.patient_id,
            query.issuer,
            query.template_id,
        )
        watch.patient_id = query.patient_id
        started = time.perf_counter()
        patients = await self.store.lookup_compact(query.patient_id, query.issuer)
        self.stats.hooks.observe_store(time.perf_counter() - started)
        tid = query.template_id
        if is_cancelled():
            return EncodedFindResult(FindStatus.CANCEL, template=tid)
        if not patients:
            return EncodedFindResult(FindStatus.SUCCESS, template=tid)
        if len(patients) > 1:
            return EncodedFindResult(
                FindStatus.MORE_THAN_ONE_MATCH, error_comment=_C100, template=tid
            )
        data = render_identifier_bytes(
            patients[0],
            query.template,
            query.request,
            transfer_syntax,
            observation_datetime=self._clock(),
        )
        return EncodedFindResult(FindStatus.PENDING, data, template=tid)
