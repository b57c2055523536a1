"""The simple request reader answers exactly as pydicom's reading does, or defers to it."""

from __future__ import annotations

import struct
import warnings
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
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
from rpi_async.service import request as rq
from rpi_async.service.request import DatasetView, ParsedRequest, RequestReader
from rpi_async.service.rules import Answer, Query, check_request

GENERAL = SopClass.GENERAL_RPI_QUERY.value
LIMIT = 1 << 20
READER = RequestReader(max_inflated=LIMIT)


def _pydicom_outcome(data: bytes, ts: str, sop: str = GENERAL) -> Any:
    """What the rules say when pydicom reads the identifier (the reference)."""
    try:
        view = DatasetView(read_identifier(data, ts, LIMIT))
    except UndecodableIdentifier:
        return _summary(check_request(None, sop))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outcome = check_request(view, sop)
        if isinstance(outcome, Query):
            return (*_summary(outcome), outcome.echo)
    return _summary(outcome)


def _simple_outcome(parsed: ParsedRequest, sop: str = GENERAL) -> Any:
    outcome = check_request(parsed, sop)
    if isinstance(outcome, Query):
        return (*_summary(outcome), outcome.echo)
    return _summary(outcome)


def _summary(outcome: Query | Answer) -> tuple[Any, ...]:
    if isinstance(outcome, Answer):
        return (outcome.status, outcome.error_comment, outcome.offending_elements)
    return (outcome.patient_id, outcome.issuer, outcome.template_id, outcome.template.tid)


def _requests() -> list[Dataset]:
    out = [
        scu.build_request("P0001", issuer, tid)
        for issuer in (None, "", "HOSP_A")
        for tid in ("9007", "3802", "12")
    ]
    bare = scu.build_request("  P 1  ", "ISS")
    bare.SpecificCharacterSet = "ISO_IR 100"
    bare.OtherPatientIDsSequence = []
    bare.PatientComments = ""
    bare.ReferencedPatientSequence = [Dataset()]  # an item: pydicom's reading decides
    out.append(bare)
    for keyword in ("PatientID", "ContentTemplateSequence"):
        ds = scu.build_request("P0001")
        delattr(ds, keyword)
        out.append(ds)
    two = scu.build_request("P0001")
    two.ContentTemplateSequence.append(Dataset())
    out.append(two)
    empty_item = scu.build_request("P0001")
    empty_item.ContentTemplateSequence = [Dataset()]
    out.append(empty_item)
    snm = scu.build_request("P0001")
    snm.ContentTemplateSequence[0].MappingResource = "SNM3"
    out.append(snm)
    return out


@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT])
@pytest.mark.parametrize("index", range(len(_requests())))
def test_pydicom_written_requests(index: int, ts: str) -> None:
    data = write_identifier(_requests()[index], ts)
    parsed = rq.parse_simple(data, ts == IMPLICIT)
    if parsed is not None:
        assert _simple_outcome(parsed) == _pydicom_outcome(data, ts)


def test_the_usual_requests_are_read_without_pydicom() -> None:
    for ts in (IMPLICIT, EXPLICIT):
        data = write_identifier(scu.build_request("P0001", "HOSP_A"), ts)
        parsed = rq.parse_simple(data, ts == IMPLICIT)
        assert parsed is not None
        assert (parsed.patient_id, parsed.issuer, parsed.template_id) == ("P0001", "HOSP_A", "9007")
    for explicit in (False, True):  # the load generator's: defined-length sequences
        data = IdentifierTemplate(QueryModel.RPI, "9000", explicit=explicit).encode("DEMO1", None)
        parsed = rq.parse_simple(data, not explicit)
        assert parsed is not None
        assert parsed.keys == (
            (0x00100010, "PN"),
            (0x00100020, "LO"),
            (0x00100030, "DA"),
            (0x00100040, "CS"),
        )


def _with(**elements: Any) -> Dataset:
    ds = scu.build_request("P0001", "HOSP_A")
    for keyword, value in elements.items():
        setattr(ds, keyword, value)
    return ds


GROUP_LENGTH = {  # (0008,0000) UL 4: pydicom never writes one, some SCUs do
    IMPLICIT: b"\x08\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00",
    EXPLICIT: b"\x08\x00\x00\x00UL\x04\x00\x00\x00\x00\x00",
}
UNSUPPORTED = {
    "private element": lambda ts: write_identifier(_add(_with(), 0x00091010, "LO", "x"), ts),
    "group length": lambda ts: GROUP_LENGTH[ts] + write_identifier(_with(), ts),
    "backslash in the ID": lambda ts: write_identifier(_with(PatientID="A\\B"), ts),
    "non-ASCII ID": lambda ts: write_identifier(
        _with(PatientID="Ä1", SpecificCharacterSet="ISO_IR 192"), ts
    ),
    "other character set": lambda ts: write_identifier(
        _with(SpecificCharacterSet="ISO_IR 144"), ts
    ),
    "a return key with a value": lambda ts: write_identifier(_with(PatientComments="hi"), ts),
    "ambiguous VR": lambda ts: write_identifier(_add(_with(), 0x00281101, "US", None), ts),
}


def _add(ds: Dataset, tag: int, vr: str, value: Any) -> Dataset:
    ds.add_new(tag, vr, value)
    return ds


@pytest.mark.parametrize("case", sorted(UNSUPPORTED))
def test_unusual_requests_are_left_to_pydicom(case: str) -> None:
    for ts in (IMPLICIT, EXPLICIT):
        data = UNSUPPORTED[case](ts)
        assert rq.parse_simple(data, ts == IMPLICIT) is None
        assert _summary(READER.read(data, ts, GENERAL)) == _pydicom_outcome(data, ts)[:4]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x10\x00\x20\x00\xff\xff\x00\x10garbage",
        b"\x00" * 7,
        b"\x10\x00\x20\x00\x04\x00\x00\x00P1  \x10\x00\x10\x00\x00\x00\x00\x00",  # out of order
    ],
    ids=["empty", "runs-past-end", "truncated", "out-of-order"],
)
def test_malformed_identifiers(data: bytes) -> None:
    parsed = rq.parse_simple(data, True)
    if parsed is not None:
        assert _simple_outcome(parsed) == _pydicom_outcome(data, IMPLICIT)
    outcome = READER.read(data, IMPLICIT, GENERAL)
    assert _summary(outcome) == _pydicom_outcome(data, IMPLICIT)[:3]


def test_deflated_requests_and_a_corrupt_one() -> None:
    data = write_identifier(scu.build_request("P0001", "HOSP_A", "3802"), DEFLATED)
    outcome = READER.read(data, DEFLATED, GENERAL)
    assert isinstance(outcome, Query)
    assert (outcome.patient_id, outcome.template_id) == ("P0001", "3802")
    broken = READER.read(b"\xff\x00garbage!", DEFLATED, GENERAL)
    assert isinstance(broken, Answer)
    assert broken.status is FindStatus.UNABLE_TO_PROCESS
    too_big = RequestReader(max_inflated=16).read(data, DEFLATED, GENERAL)
    assert isinstance(too_big, Answer)


def test_identical_requests_are_parsed_once() -> None:
    READER.clear()
    data = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)
    first = READER.read(data, IMPLICIT, GENERAL)
    again = READER.read(bytes(data), IMPLICIT, GENERAL)
    assert again is first
    other_sop = READER.read(data, IMPLICIT, SopClass.CARDIAC_RPI_QUERY.value)
    assert isinstance(other_sop, Answer)  # 9007 is not a cardiac template: not the cached one
    assert other_sop.status is FindStatus.UNABLE_TO_SUPPORT_TEMPLATE
    huge = data + write_identifier(_add(Dataset(), 0x7FE00010, "OB", bytes(5000)), IMPLICIT)
    assert READER.read(huge, IMPLICIT, GENERAL) is not READER.read(huge, IMPLICIT, GENERAL)


BASE = [
    write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT),
    IdentifierTemplate(QueryModel.RPI, "9007", explicit=False).encode("DEMO000001", "DEMO"),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    base=st.sampled_from(BASE),
    edits=st.lists(
        st.tuples(
            st.integers(0, 200), st.integers(0, 255), st.sampled_from(["set", "cut", "insert"])
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_whatever_the_bytes_the_simple_reader_agrees_with_pydicom(
    base: bytes, edits: list[tuple[int, int, str]]
) -> None:
    data = bytearray(base)
    for position, byte, kind in edits:
        at = position % (len(data) + 1)
        if kind == "set" and at < len(data):
            data[at] = byte
        elif kind == "cut":
            del data[at:]
        else:
            data[at:at] = bytes([byte])
    parsed = rq.parse_simple(bytes(data), True)
    if parsed is not None:
        assert _simple_outcome(parsed) == _pydicom_outcome(bytes(data), IMPLICIT)


def _shaped(ts: str, issuer: str | None, tid: str) -> rq.RequestShape:
    data = write_identifier(scu.build_request("P0001", issuer, tid), ts)
    found = rq.parse_shaped(data, ts == IMPLICIT)
    assert found is not None
    shape = found[1]
    assert shape is not None
    return shape


def _with_patient_id(shape: rq.RequestShape, value: bytes) -> bytes:
    """The shape's request with this Patient ID value (padded to even length)."""
    if len(value) % 2:
        value += b" "
    if shape.implicit:
        header = struct.pack("<HHI", 0x0010, 0x0020, len(value))
    else:
        header = struct.pack("<HH2sH", 0x0010, 0x0020, b"LO", len(value))
    return shape.prefix + header + value + shape.suffix


def _outcome(outcome: Query | Answer) -> Any:
    return (*_summary(outcome), outcome.echo) if isinstance(outcome, Query) else _summary(outcome)


@settings(max_examples=300, deadline=None)
@given(
    ts=st.sampled_from([IMPLICIT, EXPLICIT]),
    issuer=st.sampled_from([None, "", "HOSP_A"]),
    tid=st.sampled_from(["9007", "3802"]),
    value=st.one_of(
        st.binary(max_size=70),
        st.text(alphabet="DEMO0123456789 *?\\^-", max_size=66).map(str.encode),
    ),
)
def test_a_request_of_a_known_shape_reads_as_a_fresh_one(
    ts: str, issuer: str | None, tid: str, value: bytes
) -> None:
    shape = _shaped(ts, issuer, tid)
    data = _with_patient_id(shape, value)
    warm = RequestReader(max_inflated=LIMIT)
    warm.read(write_identifier(scu.build_request("P0002", issuer, tid), ts), ts, GENERAL)
    fresh = rq.parse_simple(data, ts == IMPLICIT)
    expected = _outcome(check_request(fresh, GENERAL)) if fresh is not None else None
    got = _outcome(warm.read(data, ts, GENERAL))
    if expected is not None:
        assert got == expected
    assert got == _outcome(RequestReader(max_inflated=LIMIT).read(data, ts, GENERAL))


def test_requests_of_a_known_shape_are_read_by_their_patient_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader = RequestReader(max_inflated=LIMIT)
    for ts in (IMPLICIT, EXPLICIT):
        reader.read(write_identifier(scu.build_request("DEMO000001", "DEMO"), ts), ts, GENERAL)

    def unexpected(data: bytes, implicit: bool) -> None:
        raise AssertionError("read in full")

    monkeypatch.setattr(rq, "parse_shaped", unexpected)
    for ts in (IMPLICIT, EXPLICIT):
        for pid in ("DEMO000002", "A", "A-MUCH-LONGER-PATIENT-ID-0001"):
            query = reader.read(write_identifier(scu.build_request(pid, "DEMO"), ts), ts, GENERAL)
            assert isinstance(query, Query)
            assert (query.patient_id, query.issuer) == (pid, "DEMO")
    monkeypatch.undo()
    for n in range(2 * rq.SHAPES):  # every issuer another shape; the oldest are forgotten
        data = write_identifier(scu.build_request("P0001", f"ISSUER{n}"), IMPLICIT)
        reader.read(data, IMPLICIT, GENERAL)
    assert len(reader._shapes) == rq.SHAPES


def test_large_requests_leave_no_shape() -> None:
    """A request over CACHE_MAX_BYTES may be read on another thread: it is read in full,
    and its shape is not kept (nor its bytes)."""
    from pydicom._dicom_dict import DicomDictionary

    base = write_identifier(scu.build_request("P0001", "HOSP_A"), IMPLICIT)
    last = 0x0040A730  # the request's last element, the Content Template Sequence
    assert base.endswith(b"\x40\x00\x30\xa7\x00\x00\x00\x00")
    empty_keys = sorted(  # zero-length return keys of the dictionary, after it
        tag
        for tag, entry in DicomDictionary.items()
        if last < tag < 0x7FE00000 and not tag >> 16 & 1 and tag & 0xFFFF
        if " " not in entry[0] and entry[0] != "SQ"
    )[:800]
    large = base + b"".join(struct.pack("<HHI", t >> 16, t & 0xFFFF, 0) for t in empty_keys)
    assert len(large) > rq.CACHE_MAX_BYTES
    assert rq.parse_simple(large, True) is not None  # a request the simple reader reads
    reader = RequestReader(max_inflated=LIMIT)
    query = reader.read(large, IMPLICIT, GENERAL)
    assert isinstance(query, Query)
    assert query.patient_id == "P0001"
    assert len(reader._shapes) == 0
    deflated = write_identifier(read_identifier(large, IMPLICIT, LIMIT), DEFLATED)
    assert len(deflated) <= rq.CACHE_MAX_BYTES  # small on the wire, large once inflated
    query = reader.read(deflated, DEFLATED, GENERAL)
    assert isinstance(query, Query)
    assert query.patient_id == "P0001"
    assert len(reader._shapes) == 0
    reader.read(base, IMPLICIT, GENERAL)
    assert len(reader._shapes) == 1


@pytest.mark.parametrize("mode", ["ignore", "warn"])
@pytest.mark.parametrize("ts", [IMPLICIT, EXPLICIT])
def test_a_value_longer_than_its_vr_is_undecodable_whatever_pydicom_checks(
    monkeypatch: pytest.MonkeyPatch, ts: str, mode: str
) -> None:
    """A Patient ID over 64 characters (LO) is answered C000 on both engines: the
    pynetdicom engine switches pydicom's reading validation off, the native one not."""
    import pydicom.config

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = write_identifier(scu.build_request("X" * 70, "HOSP_A"), ts)
        long_issuer = write_identifier(scu.build_request("P0001", "I" * 65), ts)
    validation = pydicom.config.IGNORE if mode == "ignore" else pydicom.config.WARN
    monkeypatch.setattr(pydicom.config.settings, "reading_validation_mode", validation)
    for identifier in (data, long_issuer):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # as the server has pydicom's warnings
            outcome = RequestReader(max_inflated=LIMIT).read(identifier, ts, GENERAL)
        assert isinstance(outcome, Answer)
        assert outcome.status is FindStatus.UNABLE_TO_PROCESS
