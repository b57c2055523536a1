"""QueryService: one RPI C-FIND, from request bytes to answer bytes (PS3.4 Annex Q).

Theory of operation. Both engines hand the service the same thing: the request
identifier as received, the presentation context's transfer syntax, the SOP class and
the peer. One path serves them:

    engine -> RequestReader.read   Query, or a failure Answer (rules.check_request)
           -> PatientStore         0, 1 or 2 patients (aiosqlite: the loop never waits),
                                   with the template's stored answer when it is current
           -> rules.after_lookup   FF00 / 0000 / C100 / FE00
           -> Renderer             the response identifier's bytes, in the request's
                                   transfer syntax: the stored answer spliced with the
                                   query's keys, time and Subject Age, or the template
                                   walked for the record (``store.answers``)
           -> Answer               back to the engine, which writes it

Whatever goes wrong becomes a status (``rules.for_error``): ``find`` never raises but
for cancellation. The operations features observe each query through the
``QueryMonitor`` the server plugs in (in-flight limit, latency, audit). Patient
identifiers are logged only at DEBUG.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import datetime, tzinfo

from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.transfer import IMPLICIT
from rpi_async.dicom.uids import SOP_CLASS_BY_NAME
from rpi_async.service import rules
from rpi_async.service.monitor import NullMonitor, Peer, QueryMonitor
from rpi_async.service.request import RequestReader
from rpi_async.service.rules import Answer, Query
from rpi_async.service.stats import ServerStats
from rpi_async.sr.render_bytes import NeedsRecord, Renderer
from rpi_async.store.reader import PatientStore

log = logging.getLogger("rpi_async.dimse")

SOP_NAMES: dict[str, str] = {uid.value: name for name, uid in SOP_CLASS_BY_NAME.items()}
# Identifiers larger than this are read on a thread (100,000 elements take ~0.3 s).
READ_ON_THREAD_BYTES = 64 * 1024


def _never() -> bool:
    return False


class LocalClock:
    """``datetime.now().astimezone()``, the local zone looked up once per second.

    (Finding the local zone costs a ``localtime`` call and a timezone object; a busy
    server asks for the time thousands of times a second.)
    """

    __slots__ = ("_second", "_zone")

    def __init__(self) -> None:
        self._second = -1
        self._zone: tzinfo | None = None

    def __call__(self) -> datetime:
        now = time.time()
        second = int(now)
        if second != self._second or self._zone is None:
            self._zone = datetime.fromtimestamp(now).astimezone().tzinfo
            self._second = second
        return datetime.fromtimestamp(now, self._zone)


def local_now() -> datetime:
    """The local time with its zone."""
    return datetime.now().astimezone()


class QueryService:
    """Answers RPI C-FINDs from a patient store. Shared by every engine.

    ``reader`` and ``renderer`` hold the process's caches (recent requests, compiled
    templates, encoded codes): the server passes the same ones to every QueryService
    it builds (a database reload builds a new one).
    """

    def __init__(
        self,
        store: PatientStore,
        *,
        stats: ServerStats | None = None,
        monitor: QueryMonitor | None = None,
        reader: RequestReader | None = None,
        renderer: Renderer | None = None,
        clock: Callable[[], datetime] | None = None,
        query_timeout: float | None = None,
    ) -> None:
        self.store = store
        self.stats = stats if stats is not None else ServerStats()
        self.monitor: QueryMonitor = monitor if monitor is not None else NullMonitor()
        self.reader = reader if reader is not None else RequestReader()
        self.renderer = renderer if renderer is not None else Renderer()
        self._fingerprint = self.renderer.fingerprint
        self._clock = clock if clock is not None else LocalClock()
        self.query_timeout = query_timeout

    async def find(
        self,
        identifier: bytes | None,
        transfer_syntax: str,
        sop_class_uid: str,
        peer: Peer,
        *,
        is_cancelled: Callable[[], bool] = _never,
    ) -> Answer:
        """Answer one query from the identifier as received (None: none was sent).

        A Pending answer carries the response identifier encoded in ``transfer_syntax``.
        """
        started = time.perf_counter()
        monitor = self.monitor
        if identifier is not None and len(identifier) > READ_ON_THREAD_BYTES:
            # Reading a large identifier takes long enough to stall every association
            # on the loop: it runs on a thread instead.
            query = await asyncio.to_thread(
                self.reader.read, identifier, transfer_syntax, sop_class_uid
            )
        else:
            query = self.reader.read(identifier, transfer_syntax, sop_class_uid)
        if isinstance(query, Answer):
            answer = query
            if answer.status is FindStatus.UNABLE_TO_PROCESS and identifier is not None:
                log.info("undecodable identifier from %s", peer.address)
        elif not monitor.admit():
            answer = rules.SHED_ANSWER.with_keys(query.keys)
        else:
            try:
                async with asyncio.timeout(self.query_timeout):
                    answer = await self._look_up(query, transfer_syntax, is_cancelled)
            except asyncio.CancelledError:
                monitor.release()
                seconds = time.perf_counter() - started
                monitor.answered(peer, sop_class_uid, None, query.keys, seconds)
                raise
            except Exception as exc:  # the engine must get a status, whatever happened
                answer = rules.for_error(exc, peer.ae_title).with_keys(query.keys)
            monitor.release()
        self.stats.query_answered(SOP_NAMES.get(sop_class_uid, "unknown"), int(answer.status))
        seconds = time.perf_counter() - started
        monitor.answered(peer, sop_class_uid, answer.status, answer.keys, seconds)
        return answer

    async def _look_up(
        self, query: Query, transfer_syntax: str, is_cancelled: Callable[[], bool]
    ) -> Answer:
        log.debug(
            "lookup patient_id=%r issuer=%r template=%s",
            query.patient_id,
            query.issuer,
            query.template_id,
        )
        started = time.perf_counter()
        stored = None if transfer_syntax == IMPLICIT else (query.template.tid, self._fingerprint)
        patients = await self.store.lookup_compact(query.patient_id, query.issuer, stored)
        self.monitor.store_read(time.perf_counter() - started)
        status = rules.after_lookup(len(patients), is_cancelled())
        if status is not FindStatus.PENDING:
            return rules.lookup_answer(status, query.keys)
        patient, moment = patients[0], self._clock()
        render = self.renderer.identifier_bytes
        try:
            data = render(
                patient, query.template, query.echo, transfer_syntax, moment, patient.stored
            )
        except NeedsRecord:  # the stored answer cannot serve it: the whole record, live
            [patient] = await self.store.lookup_compact(patient.patient_id, patient.issuer)
            data = render(patient, query.template, query.echo, transfer_syntax, moment)
        return Answer(FindStatus.PENDING, data, keys=query.keys)


__all__ = ["Answer", "Peer", "QueryService", "local_now"]
