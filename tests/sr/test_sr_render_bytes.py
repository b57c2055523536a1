"""The byte renderer sends exactly what pydicom writes for the Dataset rendering.

Both engines must send byte-identical identifiers: the pynetdicom engine encodes
``render_identifier``'s Dataset with pydicom, the native engine sends
``render_identifier_bytes``. Every case is compared with pydicom's writer, and the
ordinary cases must not take the fallback to pydicom.
"""

from __future__ import annotations

import datetime
import functools
import itertools
import warnings
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import encode as pynetdicom_encode

from rpi_async.dicom.codes import Code
from rpi_async.dicom.transfer import DEFLATED, EXPLICIT, IMPLICIT, write_identifier
from rpi_async.sr import wire
from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render import Record, render_identifier, request_keys
from rpi_async.sr.render_bytes import Renderer, render_identifier_bytes
from rpi_async.store import demo
from rpi_async.store.model import Fact, OtherPatientId, PatientRecord, Section
from rpi_async.store.reader import PatientStore
from tests.conftest import make_db
from tests.sr.sr_records import OBSERVED, ee_record, request, rich_record

SYNTAXES = [IMPLICIT, EXPLICIT, DEFLATED]
RENDERER = Renderer()  # one for the module: its caches are exercised across cases
RENDERER_BYTES = functools.partial(render_identifier_bytes, renderer=RENDERER)
ZONED = datetime.datetime(2026, 3, 29, 1, 59, 58, 123456, tzinfo=datetime.UTC)
# Keys the renderer does not know come back zero-length, whatever their VR.
UNKNOWN_KEYS = (
    "PatientComments",  # LT
    "OtherPatientNames",  # PN
    "EthnicGroup",  # SH
    "PatientAge",  # AS
    "PatientWeight",  # DS
    "PatientBirthTime",  # TM
    "ReferencedPatientSequence",  # SQ
    "Rows",  # US
    "StudyInstanceUID",  # UI
)


def _pydicom(record: Record, tid: str, req: Dataset, ts: str, moment: datetime.datetime) -> bytes:
    ds = render_identifier(record, TEMPLATES[tid], req, observation_datetime=moment)
    return write_identifier(ds, ts)


def _check(record: Record, tid: str, req: Dataset, moment: datetime.datetime = OBSERVED) -> None:
    """Identical to pydicom in every syntax, and without the fallback."""
    for ts in SYNTAXES:
        expected = _pydicom(record, tid, req, ts, moment)
        got = RENDERER_BYTES(record, TEMPLATES[tid], req, ts, observation_datetime=moment)
        assert got == expected, (tid, ts)
    keys = request_keys(req)
    for explicit, ts in ((False, IMPLICIT), (True, EXPLICIT)):
        direct = RENDERER.encode(record, TEMPLATES[tid], keys, explicit, moment)
        assert direct == _pydicom(record, tid, req, ts, moment)


@pytest.mark.parametrize("tid", sorted(TEMPLATES))
def test_every_template_with_every_section(tid: str) -> None:
    _check(rich_record(), tid, request("OtherPatientIDsSequence", *UNKNOWN_KEYS))


@pytest.mark.parametrize("tid", ["9007", "9000", "3802"])
def test_non_ascii_text_selects_utf8(tid: str) -> None:
    record = replace(
        rich_record(name="Müller^Zoë"),
        other_ids=(OtherPatientId("Ä-1", "Krankenhaus Süd"), OtherPatientId("X", "")),
    )
    req = request("OtherPatientIDsSequence")
    _check(record, tid, req)
    assert b"ISO_IR 192" in RENDERER_BYTES(
        record, TEMPLATES[tid], req, IMPLICIT, observation_datetime=OBSERVED
    )


def test_non_ascii_only_in_a_code_meaning_or_a_text() -> None:
    record = ee_record()
    aunt = replace(record.facts[3], modifier=Code("25211005", "SCT", "Tante (mütterlich)"))
    _check(replace(record, facts=(*record.facts[:3], aunt)), "9000", request())
    comment = Fact(Section.RISK_FACTOR, code=Code("111559", "DCM", "Weak"), text="ça va")
    _check(replace(record, facts=(comment,)), "9007", request())


@pytest.mark.parametrize("tid", ["9007", "9000", "3802"])
def test_empty_record_and_unknown_birth_date(tid: str) -> None:
    record = PatientRecord(patient_id="E", issuer="", name="", birth_date="", sex="")
    _check(record, tid, request("OtherPatientIDsSequence", "PatientComments"))


def test_requested_keys_only_and_odd_lengths() -> None:
    record = PatientRecord(
        patient_id="ODD", issuer="ISS", name="Doe^J", birth_date="19700101", sex="O"
    )
    minimal = Dataset()
    minimal.PatientID = "ODD"
    _check(record, "9007", minimal)
    _check(record, "9007", request())


def test_observation_datetime_with_and_without_zone() -> None:
    for moment in (ZONED, ZONED.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))):
        _check(rich_record(), "9007", request(), moment)
    _check(rich_record(), "9007", request(), ZONED.replace(tzinfo=None))


def test_numbers_and_their_text() -> None:
    facts = tuple(
        Fact(Section.LAB, concept=Code("2086-7", "LN", "HDL"), number=n)
        for n in (0.0, -3.0, 52.5, 1e-7, 123456789.125, 1e20)
    )
    for fact in facts:
        _check(replace(rich_record(), facts=(fact,)), "3802", request())


@pytest.mark.parametrize(
    ("name", "change"),
    [
        ("person name with component groups", {"name": "Yamada^Tarou=山田^太郎"}),
        ("non-ASCII birth date", {"birth_date": "1970010é"}),
        ("non-ASCII type of patient ID", {"other_ids": (OtherPatientId("A", "B", "TÉXT"),)}),
    ],
)
def test_cases_pydicom_encodes_give_the_same_bytes(name: str, change: dict[str, object]) -> None:
    record = replace(rich_record(), **change)  # type: ignore[arg-type]
    req = request("OtherPatientIDsSequence")
    with pytest.raises(wire.Fallback):
        RENDERER.encode(record, TEMPLATES["9007"], request_keys(req), False, OBSERVED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns about the invalid values it writes
        for ts in SYNTAXES:
            got = RENDERER_BYTES(record, TEMPLATES["9007"], req, ts, observation_datetime=OBSERVED)
            assert got == _pydicom(record, "9007", req, ts, OBSERVED)


def test_non_ascii_date_in_a_fact_falls_back() -> None:
    procedure = Fact(Section.PROCEDURE, code=Code("80146002", "SCT", "Appendectomy"), start="2020é")
    record = replace(ee_record(), facts=(procedure,))
    with pytest.raises(UnicodeEncodeError):
        RENDERER.encode(record, TEMPLATES["9007"], (), False, OBSERVED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = RENDERER_BYTES(record, TEMPLATES["9007"], (), EXPLICIT, observation_datetime=OBSERVED)
        assert got == _pydicom(record, "9007", Dataset(), EXPLICIT, OBSERVED)


def test_deflated_is_pynetdicom_encoding() -> None:
    req = request("OtherPatientIDsSequence")
    ds = render_identifier(rich_record(), TEMPLATES["9007"], req, observation_datetime=OBSERVED)
    theirs = pynetdicom_encode(ds, False, True, deflated=True)
    ours = RENDERER_BYTES(
        rich_record(), TEMPLATES["9007"], req, DEFLATED, observation_datetime=OBSERVED
    )
    assert ours == theirs
    assert len(ours) % 2 == 0
    assert zlib.decompress(ours, -zlib.MAX_WBITS) == write_identifier(ds, EXPLICIT)


async def test_demo_patients_from_the_store(tmp_path: Path) -> None:
    """Many generated patients, as the query path reads them (compact records)."""
    records = tuple(itertools.islice(demo.generate(40, seed=7), 40))
    path = make_db(tmp_path / "demo.sqlite3", records)
    store = await PatientStore.open(path)
    req = request("OtherPatientIDsSequence", "PatientComments")
    keys = request_keys(req)
    try:
        for record in records:
            [patient] = await store.lookup_compact(record.patient_id, record.issuer)
            for tid in ("9007", "9000", "3802"):
                for explicit, ts in ((False, IMPLICIT), (True, EXPLICIT)):
                    expected = _pydicom(record, tid, req, ts, ZONED)
                    got = RENDERER.encode(patient, TEMPLATES[tid], keys, explicit, ZONED)
                    assert got == expected, (record.patient_id, tid, ts)
    finally:
        await store.close()


def test_caches_do_not_mix_codes_or_modes() -> None:
    """The same node and code in both VR modes and after other codes: still identical."""
    first = rich_record()
    second = replace(
        first,
        facts=tuple(
            replace(f, laterality=Code("24028007", "SCT", "Right")) if f.laterality else f
            for f in first.facts
        ),
    )
    for record in (first, second, first):
        _check(record, "9000", request())
