"""QueryService.find against a reference built from pydicom: the same answers, the same bytes.

The reference decodes the request with pydicom, applies the same status rules to it
(``rules.check_request`` over a ``DatasetView``), looks the patient up and encodes the
Dataset rendering with pydicom's writer: what the service does without pydicom must
equal it, status, comment, offending elements and identifier bytes alike.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from rpi_async import scu
from rpi_async.bench.identifier import IdentifierTemplate, QueryModel
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.transfer import (
    DEFLATED,
    EXPLICIT,
    IMPLICIT,
    UndecodableIdentifier,
    read_identifier,
    write_identifier,
)
from rpi_async.dicom.uids import SopClass
from rpi_async.errors import StoreUnavailable
from rpi_async.service import rules
from rpi_async.service.query import Answer, LocalClock, Peer, QueryService, local_now
from rpi_async.service.request import DatasetView
from rpi_async.sr.render import render_identifier
from rpi_async.store.reader import PatientStore

PEER = Peer("TEST", "127.0.0.1", 40000)
NOON = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone(timedelta(hours=1)))
GENERAL = SopClass.GENERAL_RPI_QUERY.value
LIMIT = 1 << 20


@pytest.fixture
async def service(sample_db: Path) -> AsyncIterator[QueryService]:
    store = await PatientStore.open(sample_db)
    try:
        yield QueryService(store, clock=lambda: NOON)
    finally:
        await store.close()


def _request(**changes: object) -> Dataset:
    ds = scu.build_request("P0001", "HOSP_A")
    for keyword, value in changes.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    return ds


def _two_items() -> Dataset:
    ds = scu.build_request("P0001")
    ds.ContentTemplateSequence.append(ds.ContentTemplateSequence[0])
    return ds


def _wrong_resource() -> Dataset:
    ds = scu.build_request("P0001")
    ds.ContentTemplateSequence[0].MappingResource = "SNM3"
    return ds


def _no_template_id() -> Dataset:
    ds = scu.build_request("P0001")
    del ds.ContentTemplateSequence[0].TemplateIdentifier
    return ds


def _with_keys() -> Dataset:
    ds = scu.build_request("P0002", "HOSP_A")  # Müller^Jürgen: ISO_IR 192
    ds.OtherPatientIDsSequence = []
    ds.PatientComments = ""
    ds.add_new(0x00091010, "LO", "private: read by pydicom")
    return ds


REQUESTS: dict[str, tuple[Dataset, str]] = {
    "match 9007": (scu.build_request("P0001", "HOSP_A"), GENERAL),
    "match 9000": (scu.build_request("P0001", None, "9000"), GENERAL),
    "match 3802 cardiac": (scu.build_request("P0001", "", "3802"), SopClass.CARDIAC_RPI_QUERY),
    "match breast": (scu.build_request("P0001", "HOSP_A", "9000"), SopClass.BREAST_RPI_QUERY),
    "non-ASCII name, more keys": (_with_keys(), GENERAL),
    "no match": (scu.build_request("NOBODY"), GENERAL),
    "two matches": (scu.build_request("DUP"), GENERAL),
    "issuer picks one": (scu.build_request("DUP", "ISSUER_B"), GENERAL),
    "unsupported template": (scu.build_request("P0001", None, "1234"), GENERAL),
    "not for this class": (scu.build_request("P0001", None, "9007"), SopClass.BREAST_RPI_QUERY),
    "no patient id": (_request(PatientID=None), GENERAL),
    "empty patient id": (_request(PatientID=""), GENERAL),
    "no template sequence": (_request(ContentTemplateSequence=None), GENERAL),
    "two template items": (_two_items(), GENERAL),
    "wrong mapping resource": (_wrong_resource(), GENERAL),
    "no template identifier": (_no_template_id(), GENERAL),
    "unserved SOP class": (scu.build_request("P0001"), "1.2.3"),
}


async def reference(
    service: QueryService, data: bytes | None, ts: str, sop: str, cancelled: bool = False
) -> Answer:
    """The answer as pydicom would give it: decode, the same rules, render a Dataset."""
    try:
        view = None if data is None else DatasetView(read_identifier(data, ts, LIMIT))
    except UndecodableIdentifier:
        view = None
    query = rules.check_request(view, sop)
    if isinstance(query, Answer):
        return query
    patients = await service.store.lookup(query.patient_id, query.issuer)
    status = rules.after_lookup(len(patients), cancelled)
    if status is not FindStatus.PENDING:
        return rules.lookup_answer(status, query.keys)
    ds = render_identifier(patients[0], query.template, query.echo, observation_datetime=NOON)
    return Answer(status, write_identifier(ds, ts), keys=query.keys)


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, DEFLATED])
@pytest.mark.parametrize("case", sorted(REQUESTS))
async def test_same_answer_as_pydicom(service: QueryService, case: str, ts: str) -> None:
    request, sop = REQUESTS[case]
    data = write_identifier(request, ts)
    assert await service.find(data, ts, sop, PEER) == await reference(service, data, ts, sop)


@pytest.mark.parametrize("explicit", [False, True])
async def test_load_generator_requests(service: QueryService, explicit: bool) -> None:
    ts = EXPLICIT if explicit else IMPLICIT
    data = IdentifierTemplate(QueryModel.RPI, "9007", explicit=explicit).encode("P0001", None)
    answer = await service.find(data, ts, GENERAL, PEER)
    assert answer.status is FindStatus.PENDING
    assert answer == await reference(service, data, ts, GENERAL)


@pytest.mark.parametrize(
    "data",
    [None, b"\x10\x00\x20\x00\xff\xff\x00\x10garbage" + bytes(range(256)), b"\x00" * 7],
    ids=["none", "runs-past-end", "nul-bytes"],
)
async def test_undecodable_identifiers_as_pydicom_answers_them(
    service: QueryService, data: bytes | None
) -> None:
    answer = await service.find(data, IMPLICIT, GENERAL, PEER)
    assert answer == await reference(service, data, IMPLICIT, GENERAL)


async def test_undecodable_deflated_identifier_is_logged(
    service: QueryService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    answer = await service.find(b"\xffnot deflate", DEFLATED, GENERAL, PEER)
    assert answer.status is FindStatus.UNABLE_TO_PROCESS
    assert answer.error_comment == "Identifier could not be decoded"
    assert "undecodable identifier from 127.0.0.1" in caplog.text


async def test_cancel_before_the_answer(service: QueryService) -> None:
    data = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)
    answer = await service.find(data, IMPLICIT, GENERAL, PEER, is_cancelled=lambda: True)
    assert answer.status is FindStatus.CANCEL
    assert answer.identifier is None


async def test_statistics_count_every_answer(service: QueryService) -> None:
    data = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)
    await service.find(data, IMPLICIT, GENERAL, PEER)
    await service.find(data, IMPLICIT, GENERAL, PEER)
    await service.find(None, IMPLICIT, SopClass.CARDIAC_RPI_QUERY, PEER)
    assert service.stats.queries[("general", 0xFF00)] == 2
    assert service.stats.queries[("cardiac", 0xC000)] == 1


async def test_store_problems_become_statuses(
    service: QueryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)

    async def overloaded(*args: object) -> list[object]:
        raise StoreUnavailable("patient store overloaded: no free connection")

    async def broken(*args: object) -> list[object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service.store, "lookup_compact", overloaded)
    result = await service.find(data, IMPLICIT, GENERAL, PEER)
    assert result.status is FindStatus.OUT_OF_RESOURCES
    monkeypatch.setattr(service.store, "lookup_compact", broken)
    result = await service.find(data, IMPLICIT, GENERAL, PEER)
    assert result.status is FindStatus.UNABLE_TO_PROCESS
    assert "fire" not in (result.error_comment or "")


async def test_closed_store_gives_a700(sample_db: Path) -> None:
    store = await PatientStore.open(sample_db)
    service = QueryService(store)
    await store.close()
    data = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)
    result = await service.find(data, IMPLICIT, GENERAL, PEER)
    assert result.status is FindStatus.OUT_OF_RESOURCES


async def test_observation_datetime_is_the_time_of_each_query(sample_db: Path) -> None:
    store = await PatientStore.open(sample_db)
    moments = iter([NOON, NOON + timedelta(seconds=1), NOON.astimezone(UTC)])
    service = QueryService(store, clock=lambda: next(moments))
    data = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)
    try:
        answers = [await service.find(data, IMPLICIT, GENERAL, PEER) for _ in range(3)]
    finally:
        await store.close()
    texts = [
        read_identifier(a.identifier or b"", IMPLICIT, LIMIT).ObservationDateTime for a in answers
    ]
    assert texts == ["20261128120000+0100", "20261128120001+0100", "20261128110000+0000"]


@pytest.mark.parametrize("clock", [local_now, LocalClock()], ids=["plain", "cached zone"])
def test_default_clock_is_local_time_with_its_zone(clock: Callable[[], datetime]) -> None:
    before = datetime.now().astimezone()
    now = clock()
    after = datetime.now().astimezone()
    assert before <= now <= after
    assert now.utcoffset() == after.utcoffset()
    assert now.tzinfo is not None
