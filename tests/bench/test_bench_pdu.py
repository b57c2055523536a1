"""The generator's own PDU and identifier encoding, checked against pydicom and pynetdicom."""

from __future__ import annotations

import struct
from io import BytesIO
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pynetdicom.pdu import A_ASSOCIATE_RQ, P_DATA_TF

from rpi_async.bench import pdu
from rpi_async.bench.identifier import PATIENT_ROOT_FIND, IdentifierTemplate, QueryModel
from rpi_async.bench.mix import DUP_ID, Mix, QueryKind, QueryPlan, demo_hits, read_patients_file
from rpi_async.bench.session import PduStream
from rpi_async.dicom.uids import SopClass, TransferSyntax
from rpi_async.errors import ConfigError


def decode(raw: bytes, explicit: bool) -> Dataset:
    return read_dataset(BytesIO(raw), is_implicit_VR=not explicit, is_little_endian=True)


@pytest.mark.parametrize("explicit", [False, True])
def test_rpi_identifier_decodes_with_pydicom(explicit: bool) -> None:
    raw = IdentifierTemplate(QueryModel.RPI, "9000", explicit=explicit).encode("ABC", "HOSP")
    ds = decode(raw, explicit)
    assert ds.PatientID == "ABC"
    assert ds.IssuerOfPatientID == "HOSP"
    assert ds.PatientName == ""
    assert ds.PatientBirthDate == ""
    assert ds.PatientSex == ""
    (item,) = ds.ContentTemplateSequence
    assert item.MappingResource == "DCMR"
    assert item.TemplateIdentifier == "9000"


@pytest.mark.parametrize("explicit", [False, True])
def test_patient_root_identifier(explicit: bool) -> None:
    template = IdentifierTemplate(QueryModel.PATIENT_ROOT, "", explicit=explicit)
    ds = decode(template.encode("DEMO000001", None), explicit)
    assert ds.QueryRetrieveLevel == "PATIENT"
    assert ds.PatientID == "DEMO000001"
    assert "IssuerOfPatientID" not in ds
    assert "ContentTemplateSequence" not in ds


def test_associate_rq_decodes_with_pynetdicom() -> None:
    raw = pdu.encode_associate_rq("RPI_SCP", "BENCH", SopClass.CARDIAC_RPI_QUERY)
    decoded = A_ASSOCIATE_RQ()
    decoded.decode(raw)
    assert decoded.called_ae_title == "RPI_SCP"
    assert decoded.calling_ae_title == "BENCH"
    (context,) = decoded.presentation_context
    assert context.context_id == pdu.CONTEXT_ID
    assert str(context.abstract_syntax) == str(SopClass.CARDIAC_RPI_QUERY)
    assert [str(ts) for ts in context.transfer_syntax] == [
        str(TransferSyntax.IMPLICIT_VR_LE),
        str(TransferSyntax.EXPLICIT_VR_LE),
    ]
    assert decoded.user_information is not None
    assert decoded.user_information.maximum_length == pdu.MAX_PDU_LENGTH


def test_find_pdata_holds_command_and_identifier() -> None:
    command = pdu.encode_find_command(PATIENT_ROOT_FIND, message_id=9)
    identifier = IdentifierTemplate(QueryModel.PATIENT_ROOT, "", explicit=False).encode("X1", None)
    decoded = P_DATA_TF()
    decoded.decode(pdu.encode_find_pdata(command, identifier))
    first, second = decoded.presentation_data_value_items
    assert first.presentation_context_id == second.presentation_context_id == pdu.CONTEXT_ID
    cmd, data = first.presentation_data_value, second.presentation_data_value
    assert cmd is not None
    assert data is not None
    assert cmd[0] == pdu.PDV_COMMAND | pdu.PDV_LAST
    assert data[0] == pdu.PDV_LAST
    ds = decode(cmd[1:], explicit=False)
    assert ds.CommandField == pdu.CommandField.C_FIND_RQ
    assert ds.MessageID == 9
    assert ds.AffectedSOPClassUID == PATIENT_ROOT_FIND
    assert ds.CommandGroupLength == len(cmd) - 1 - 12
    assert data[1:] == identifier


def _command(status: int, data_set: int) -> bytes:
    def el(element: int, value: int) -> bytes:
        return struct.pack("<HHIH", 0, element, 2, value)

    body = el(0x0100, 0x8020) + el(0x0120, 1) + el(0x0800, data_set) + el(0x0900, status)
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


@pytest.mark.parametrize(
    ("status", "data_set", "has_data"), [(0xFF00, 0x0001, True), (0xC100, 0x0101, False)]
)
def test_parse_command(status: int, data_set: int, has_data: bool) -> None:
    summary = pdu.parse_command(_command(status, data_set))
    assert summary == pdu.CommandSummary(pdu.CommandField.C_FIND_RSP, status, has_data)


@pytest.mark.parametrize(
    "garbage",
    [b"\x00\x01\x02\x03\x04\x05\x06\x07", struct.pack("<HHI", 8, 0x10, 2) + b"ab", b"\x00\x00"],
)
def test_parse_command_rejects_garbage(garbage: bytes) -> None:
    with pytest.raises(pdu.ProtocolViolation):
        pdu.parse_command(garbage)


def test_parse_header_rejects_unknown_type() -> None:
    with pytest.raises(pdu.ProtocolViolation, match="unknown PDU type 0x48"):
        pdu.parse_header(b"HTTP/1.1 400")


def test_reject_is_described() -> None:
    reject = pdu.parse_associate_rj(bytes([0, 1, 1, 7]))
    assert reject.describe() == "called AE title not recognized (result 1, source 1, reason 7)"


async def test_stream_whole_or_byte_at_a_time_gives_the_same_pdus() -> None:
    wire = pdu.RELEASE_RP + pdu.encode_find_pdata(b"\x00\x00", b"\x01\x02") + pdu.ABORT
    whole, split = PduStream(), PduStream()
    whole.data_received(wire)
    for i in range(len(wire)):
        split.data_received(wire[i : i + 1])
    for stream in (whole, split):
        kinds = [(await stream.read())[0] for _ in range(3)]
        assert kinds == [pdu.PduType.RELEASE_RP, pdu.PduType.P_DATA_TF, pdu.PduType.ABORT]


def test_mix_parse() -> None:
    assert Mix.parse("hit=1,dup=0.5") == Mix(hit=1.0, miss=0.0, dup=0.5)
    for bad in ("hit", "foo=1", "hit=-1", "hit=0", "hit=x"):
        with pytest.raises(ConfigError):
            Mix.parse(bad)


def test_plan_is_deterministic_and_follows_the_mix() -> None:
    def plan(seed: int) -> QueryPlan:
        return QueryPlan(
            demo_hits(50),
            Mix(hit=0.5, miss=0.25, dup=0.25),
            sop_class=SopClass.GENERAL_RPI_QUERY,
            model=QueryModel.RPI,
            template_id="9007",
            seed=seed,
        )

    first, again, other = plan(3), plan(3), plan(4)
    assert first.schedule == again.schedule
    assert first.schedule != other.schedule
    kinds = [first.keys[i].kind for i in first.schedule]
    share = {k: kinds.count(k) / len(kinds) for k in QueryKind}
    assert share[QueryKind.HIT] == pytest.approx(0.5, abs=0.02)
    assert share[QueryKind.DUP] == pytest.approx(0.25, abs=0.02)
    dup_ids = {k.patient_id for k in first.keys if k.kind is QueryKind.DUP}
    assert dup_ids == {DUP_ID}
    assert len(first.implicit_pdus) == len(first.explicit_pdus) == len(first.keys)


def test_patients_file(tmp_path: Path) -> None:
    path = tmp_path / "ids.txt"
    path.write_text("# comment\nA1\nB2\tISSUER\n\n", encoding="utf-8")
    keys = read_patients_file(path)
    assert [(k.patient_id, k.issuer) for k in keys] == [("A1", None), ("B2", "ISSUER")]
    path.write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="holds no patient ID"):
        read_patients_file(path)
