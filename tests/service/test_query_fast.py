"""QueryService.find_encoded: the same answers as find, already encoded."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
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
from rpi_async.service import request as rq
from rpi_async.service.query import EncodedFindResult, FindResult, Peer, QueryService, local_now
from rpi_async.store.reader import PatientStore

PEER = Peer("TEST", "127.0.0.1", 40000)
NOON = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone(timedelta(hours=1)))
GENERAL = SopClass.GENERAL_RPI_QUERY.value
LIMIT = 1 << 20


@pytest.fixture
async def service(sample_db: Path) -> AsyncIterator[QueryService]:
    store = await PatientStore.open(sample_db)
    rq.clear_cache()
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


def _same(encoded: EncodedFindResult, classic: FindResult, ts: str) -> None:
    assert encoded.status is classic.status
    assert encoded.error_comment == classic.error_comment
    assert encoded.offending_elements == classic.offending_elements
    if classic.identifier is None:
        assert encoded.identifier is None
    else:
        assert encoded.identifier == write_identifier(classic.identifier, ts)


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT, DEFLATED])
@pytest.mark.parametrize("case", sorted(REQUESTS))
async def test_same_answer_as_find(service: QueryService, case: str, ts: str) -> None:
    request, sop = REQUESTS[case]
    data = write_identifier(request, ts)
    encoded = await service.find_encoded(data, ts, sop, PEER)
    classic = await service.find(read_identifier(data, ts, LIMIT), sop, PEER)
    _same(encoded, classic, ts)


@pytest.mark.parametrize("explicit", [False, True])
async def test_load_generator_requests(service: QueryService, explicit: bool) -> None:
    ts = EXPLICIT if explicit else IMPLICIT
    data = IdentifierTemplate(QueryModel.RPI, "9007", explicit=explicit).encode("P0001", None)
    encoded = await service.find_encoded(data, ts, GENERAL, PEER)
    assert encoded.status is FindStatus.PENDING
    _same(encoded, await service.find(read_identifier(data, ts, LIMIT), GENERAL, PEER), ts)


@pytest.mark.parametrize(
    "data",
    [None, b"\x10\x00\x20\x00\xff\xff\x00\x10garbage" + bytes(range(256)), b"\x00" * 7],
    ids=["none", "runs-past-end", "nul-bytes"],
)
async def test_undecodable_identifiers_as_find_answers_them(
    service: QueryService, data: bytes | None
) -> None:
    encoded = await service.find_encoded(data, IMPLICIT, GENERAL, PEER)
    try:
        identifier = None if data is None else read_identifier(data, IMPLICIT, LIMIT)
    except UndecodableIdentifier:
        identifier = None
    _same(encoded, await service.find(identifier, GENERAL, PEER), IMPLICIT)


async def test_undecodable_deflated_identifier_is_logged(
    service: QueryService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    encoded = await service.find_encoded(b"\xffnot deflate", DEFLATED, GENERAL, PEER)
    assert encoded.status is FindStatus.UNABLE_TO_PROCESS
    assert encoded.error_comment == "Identifier could not be decoded"
    assert "undecodable identifier from 127.0.0.1" in caplog.text


async def test_cancel_before_the_answer(service: QueryService) -> None:
    data = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)
    encoded = await service.find_encoded(data, IMPLICIT, GENERAL, PEER, is_cancelled=lambda: True)
    assert encoded.status is FindStatus.CANCEL
    assert encoded.identifier is None


async def test_statistics_count_every_answer(service: QueryService) -> None:
    data = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)
    await service.find_encoded(data, IMPLICIT, GENERAL, PEER)
    await service.find_encoded(data, IMPLICIT, GENERAL, PEER)
    await service.find_encoded(None, IMPLICIT, SopClass.CARDIAC_RPI_QUERY, PEER)
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
    result = await service.find_encoded(data, IMPLICIT, GENERAL, PEER)
    assert result.status is FindStatus.OUT_OF_RESOURCES
    monkeypatch.setattr(service.store, "lookup_compact", broken)
    result = await service.find_encoded(data, IMPLICIT, GENERAL, PEER)
    assert result.status is FindStatus.UNABLE_TO_PROCESS
    assert "fire" not in (result.error_comment or "")


async def test_closed_store_gives_a700(sample_db: Path) -> None:
    store = await PatientStore.open(sample_db)
    service = QueryService(store)
    await store.close()
    data = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)
    result = await service.find_encoded(data, IMPLICIT, GENERAL, PEER)
    assert result.status is FindStatus.OUT_OF_RESOURCES


async def test_observation_datetime_is_the_time_of_each_query(sample_db: Path) -> None:
    store = await PatientStore.open(sample_db)
    moments = iter([NOON, NOON + timedelta(seconds=1), NOON.astimezone(UTC)])
    service = QueryService(store, clock=lambda: next(moments))
    data = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)
    try:
        answers = [await service.find_encoded(data, IMPLICIT, GENERAL, PEER) for _ in range(3)]
    finally:
        await store.close()
    texts = [
        read_identifier(a.identifier or b"", IMPLICIT, LIMIT).ObservationDateTime for a in answers
    ]
    assert texts == ["20261128120000+0100", "20261128120001+0100", "20261128110000+0000"]


def test_default_clock_is_local_time_with_its_zone() -> None:
    before = datetime.now().astimezone()
    now = local_now()
    after = datetime.now().astimezone()
    assert before <= now <= after
    assert now.utcoffset() == after.utcoffset()
    assert now.tzinfo is not None
