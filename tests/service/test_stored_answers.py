"""Stored answers (``store.answers``): a hit spliced from them equals a live render, byte
for byte, for every stored template, transfer syntax and date, and is never stale."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from rpi_async import scu
from rpi_async.dicom.transfer import DEFLATED, EXPLICIT, IMPLICIT, write_identifier
from rpi_async.dicom.uids import SopClass
from rpi_async.service.query import Peer, QueryService
from rpi_async.sr import prerender
from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render_bytes import Renderer
from rpi_async.store import answers, demo, schema
from rpi_async.store.model import PatientRecord
from rpi_async.store.reader import PatientStore
from rpi_async.store.writer import write_patients
from tests.conftest import JANE, UNICODE

PEER = Peer("TEST", "127.0.0.1", 40000)
NOON = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone(timedelta(hours=1)))
PATIENTS = 120
# (template, SOP class): every stored template, and one a SOP class other than its own.
CASES = [
    ("9007", SopClass.GENERAL_RPI_QUERY),
    ("9000", SopClass.BREAST_RPI_QUERY),
    ("9000", SopClass.GENERAL_RPI_QUERY),
    ("3802", SopClass.CARDIAC_RPI_QUERY),
]
IDEOGRAPHIC = PatientRecord(patient_id="P0003", issuer="HOSP_A", name="Yamada^Tarou=山田^太郎")


class LiveRenderer(Renderer):
    """Renders every answer live: its fingerprint matches no stored answer."""

    def __init__(self) -> None:
        super().__init__()
        self.fingerprint = "live"


@pytest.fixture
def stored_db(tmp_path: Path) -> Path:
    path = tmp_path / "stored.sqlite3"
    conn = schema.connect_writer(path, create=True)
    try:
        demo.populate(conn, PATIENTS, 0)
        write_patients(conn, [JANE, UNICODE, IDEOGRAPHIC])
        assert prerender.prerender(conn, path, workers=2) > 0
    finally:
        conn.close()
    return path


# How the store reads: batched on its reader threads (as the server opens it by default)
# or inline (``store_inline``). Either way answers come as stored, the renderer inflates.
READS = ["readers", "inline"]


async def _open(path: Path, how: str) -> PatientStore:
    return await PatientStore.open(path, readers=2, inline=how == "inline")


@pytest.fixture(params=READS)
async def store(stored_db: Path, request: pytest.FixtureRequest) -> AsyncIterator[PatientStore]:
    store = await _open(stored_db, request.param)
    try:
        yield store
    finally:
        await store.close()


def _ids() -> list[tuple[str, str | None]]:
    ids = [(demo.demo_patient_id(n), "DEMO") for n in range(1, PATIENTS + 1)]
    return [*ids, ("P0001", "HOSP_A"), ("P0002", "HOSP_A"), ("P0003", "HOSP_A")]


@pytest.mark.parametrize("ts", [EXPLICIT, DEFLATED, IMPLICIT])
@pytest.mark.parametrize(("template", "sop"), CASES)
async def test_spliced_answers_equal_live_ones(
    store: PatientStore, template: str, sop: str, ts: str
) -> None:
    stored = QueryService(store, clock=lambda: NOON)
    live = QueryService(store, clock=lambda: NOON, renderer=LiveRenderer())
    used = 0
    for patient_id, issuer in _ids():
        request = scu.build_request(patient_id, issuer, template)
        request.PatientName = ""
        request.PatientBirthDate = ""
        data = write_identifier(request, ts)
        assert await stored.find(data, ts, sop, PEER) == await live.find(data, ts, sop, PEER)
        key = (template, stored.renderer.fingerprint)
        used += (await store.lookup_compact(patient_id, issuer, key))[0].stored is not None
    assert used == len(_ids())  # every patient had a current stored answer


async def test_subject_age_follows_the_date_of_the_query(store: PatientStore) -> None:
    data = write_identifier(scu.build_request("DEMO000001", "DEMO"), EXPLICIT)
    for days in (0, 1, 400, 4000):
        clock = functools.partial(lambda m: m, NOON + timedelta(days=days))
        stored = QueryService(store, clock=clock)
        live = QueryService(store, clock=clock, renderer=LiveRenderer())
        general = SopClass.GENERAL_RPI_QUERY
        assert await stored.find(data, EXPLICIT, general, PEER) == await live.find(
            data, EXPLICIT, general, PEER
        )


async def test_an_updated_patient_is_never_answered_from_its_old_answer(
    stored_db: Path,
) -> None:
    changed = dataclasses.replace(JANE, name="Doe^Janet", facts=JANE.facts[:1])
    conn = schema.connect_writer(stored_db)
    try:
        write_patients(conn, [changed])
        renderer = Renderer().fingerprint
        outdated = list(answers.outdated(conn, prerender.STORED_TEMPLATES, renderer))
        assert {pk for pk, _ in outdated} != set()  # JANE's answers are outdated now
        store = await PatientStore.open(stored_db, readers=1)
        try:
            data = write_identifier(scu.build_request("P0001", "HOSP_A"), EXPLICIT)
            general = SopClass.GENERAL_RPI_QUERY
            stale = QueryService(store, clock=lambda: NOON)
            live = QueryService(store, clock=lambda: NOON, renderer=LiveRenderer())
            answer = await stale.find(data, EXPLICIT, general, PEER)
            assert answer == await live.find(data, EXPLICIT, general, PEER)
            assert b"Doe^Janet" in (answer.identifier or b"")
            [patient] = await store.lookup_compact("P0001", "HOSP_A", ("9007", renderer))
            assert patient.stored is None  # rendered live until rendered again
            assert prerender.prerender(conn, stored_db, workers=1) == len(outdated)
            [patient] = await store.lookup_compact("P0001", "HOSP_A", ("9007", renderer))
            assert patient.stored is not None
            assert await stale.find(data, EXPLICIT, general, PEER) == answer
        finally:
            await store.close()
    finally:
        conn.close()


async def test_stored_answers_are_compressed_and_counted(stored_db: Path) -> None:
    conn = schema.connect_writer(stored_db)
    try:
        renderer = Renderer()
        counts = answers.counts(conn, renderer.fingerprint)
        assert counts == dict.fromkeys(prerender.STORED_TEMPLATES, PATIENTS + 5)
        raw = renderer.stored_answer(JANE, TEMPLATES["9007"])
        assert raw is not None
        plain = Renderer(compress=False).stored_answer(JANE, TEMPLATES["9007"])
        assert plain is not None
        assert len(raw.content) < len(plain.content)
        assert list(answers.outdated(conn, prerender.STORED_TEMPLATES, "other")) != []
    finally:
        conn.close()


@pytest.mark.parametrize("how", READS)
async def test_an_answer_that_does_not_inflate_is_rendered_from_the_facts(
    stored_db: Path, how: str
) -> None:
    conn = schema.connect_writer(stored_db)
    try:
        (pk,) = conn.execute("SELECT pk FROM patient WHERE patient_id = 'P0001'").fetchone()
        conn.execute(
            "UPDATE answer SET content = ? WHERE patient_pk = ? AND template = '9007'",
            (b"not a zstd frame", pk),
        )
    finally:
        conn.close()
    renderer = Renderer()
    store = await _open(stored_db, how)
    try:
        data = write_identifier(scu.build_request("P0001", "HOSP_A"), EXPLICIT)
        general = SopClass.GENERAL_RPI_QUERY
        stored = QueryService(store, clock=lambda: NOON, renderer=renderer)
        live = QueryService(store, clock=lambda: NOON, renderer=LiveRenderer())
        answer = await stored.find(data, EXPLICIT, general, PEER)
        assert answer.status == 0xFF00
        assert answer == await live.find(data, EXPLICIT, general, PEER)
        # The other patients of the same statement keep their stored answers.
        key = ("9007", renderer.fingerprint)
        [other] = await store.lookup_compact("P0002", "HOSP_A", key)
        assert other.stored is not None
        assert renderer.inflate(other.stored.content) is not None
    finally:
        await store.close()
