"""QueryService rules (PS3.4 Q.2.1.1.4) without any network in between: bytes in, Answer out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from rpi_async import scu
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.transfer import EXPLICIT, IMPLICIT, read_identifier, write_identifier
from rpi_async.dicom.uids import SopClass
from rpi_async.errors import StoreUnavailable
from rpi_async.service.query import Answer, Peer, QueryService
from rpi_async.store.reader import PatientStore

PEER = Peer("TEST", "127.0.0.1", 40000)
NOON = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
async def service(sample_db: Path) -> AsyncIterator[QueryService]:
    store = await PatientStore.open(sample_db, readers=2)
    try:
        yield QueryService(store, clock=lambda: NOON)
    finally:
        await store.close()


async def find(
    service: QueryService, ds: Dataset | None, sop: str = SopClass.GENERAL_RPI_QUERY
) -> Answer:
    data = None if ds is None else write_identifier(ds, IMPLICIT)
    return await service.find(data, IMPLICIT, sop, PEER)


async def test_match(service: QueryService) -> None:
    result = await find(service, scu.build_request("P0001", "HOSP_A"))
    assert result.status is FindStatus.PENDING
    assert result.identifier is not None
    identifier = read_identifier(result.identifier, IMPLICIT, 1 << 20)
    assert identifier.ObservationDateTime.startswith("20261128120000")
    assert result.keys.patient_id == "P0001"
    assert result.keys.issuer == "HOSP_A"
    assert service.stats.queries[("general", 0xFF00)] == 1


async def test_issuer_zero_length_means_any(service: QueryService) -> None:
    result = await find(service, scu.build_request("P0001", ""))
    assert result.status is FindStatus.PENDING


async def test_cancel_before_answer(service: QueryService) -> None:
    result = await service.find(
        write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT),
        IMPLICIT,
        SopClass.GENERAL_RPI_QUERY,
        PEER,
        is_cancelled=lambda: True,
    )
    assert result.status is FindStatus.CANCEL
    assert result.identifier is None


async def test_undecodable_identifier(service: QueryService) -> None:
    result = await find(service, None)
    assert result.status is FindStatus.UNABLE_TO_PROCESS
    assert result.error_comment


async def test_store_unavailable_gives_a700(sample_db: Path) -> None:
    store = await PatientStore.open(sample_db, readers=1)
    service = QueryService(store)
    await store.close()
    result = await find(service, scu.build_request("P0001", "HOSP_A"))
    assert result.status is FindStatus.OUT_OF_RESOURCES


async def test_unexpected_error_gives_c000(
    service: QueryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> list[object]:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(service.store, "lookup_compact", broken)
    result = await find(service, scu.build_request("P0001", "HOSP_A"))
    assert result.status is FindStatus.UNABLE_TO_PROCESS
    assert "fire" not in (result.error_comment or "")


async def test_store_overloaded_gives_a700(
    service: QueryService, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def overloaded(*args: object) -> list[object]:
        raise StoreUnavailable("patient store overloaded: no free connection")

    monkeypatch.setattr(service.store, "lookup_compact", overloaded)
    result = await find(service, scu.build_request("P0001", "HOSP_A"))
    assert result.status is FindStatus.OUT_OF_RESOURCES


async def test_two_items_in_content_template_sequence(service: QueryService) -> None:
    ds = scu.build_request("P0001", "HOSP_A")
    ds.ContentTemplateSequence.append(ds.ContentTemplateSequence[0])
    result = await find(service, ds)
    assert result.status is FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert result.offending_elements == (0x0040A504,)
    assert result.keys.patient_id == "P0001"  # audited with what the request named


async def test_missing_template_identifier(service: QueryService) -> None:
    ds = scu.build_request("P0001", "HOSP_A")
    del ds.ContentTemplateSequence[0].TemplateIdentifier
    result = await find(service, ds)
    assert result.status is FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert result.offending_elements == (0x0040DB00,)


async def test_unknown_sop_class(service: QueryService) -> None:
    result = await find(service, scu.build_request("P0001"), sop="1.2.3")
    assert result.status is FindStatus.UNABLE_TO_PROCESS


@pytest.mark.parametrize(
    ("patient_id", "issuer", "tag"),
    [
        ("P0001\\P0002", "HOSP_A", 0x00100020),  # two values
        ("P000*", "HOSP_A", 0x00100020),  # wildcards ask for another kind of matching
        ("P?001", "HOSP_A", 0x00100020),
        ("P0001", "HOSP_A\\HOSP_B", 0x00100021),
        ("P0001", "HOSP_*", 0x00100021),
    ],
)
@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT])
async def test_patient_id_and_issuer_are_single_values(
    service: QueryService, patient_id: str, issuer: str, tag: int, ts: str
) -> None:
    """Single value matching (PS3.4 Q.2.1.1.3): several values or a wildcard is A900
    naming the element, not a lookup of the text as written (which would only miss)."""
    data = write_identifier(scu.build_request(patient_id, issuer), ts)
    result = await service.find(data, ts, SopClass.GENERAL_RPI_QUERY, PEER)
    assert result.status is FindStatus.IDENTIFIER_DOES_NOT_MATCH_SOP_CLASS
    assert result.offending_elements == (tag,)
    assert result.error_comment is not None
    assert "one value" in result.error_comment
