"""DIMSE command sets, PDV reassembly and fragmentation."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import decode

from rpi_async.dicom.status import FindStatus
from rpi_async.ul.commands import (
    CCancelRQ,
    CEchoRQ,
    CEchoRSP,
    CFindRQ,
    CFindRSP,
    DimseCommand,
    Priority,
    UnknownCommand,
    decode_command,
    encode_command,
)
from rpi_async.ul.dimse import MessageAssembler, encode_message, fragment_message
from rpi_async.ul.errors import InvalidCommand, InvalidParameter, LocalProtocolError
from rpi_async.ul.events import DimseMessage
from rpi_async.ul.pdu import PDataTF, PresentationDataValue, read_pdu

messages = pytest.importorskip("pynetdicom.tests.encoded_dimse_msg")
pdus = pytest.importorskip("pynetdicom.tests.encoded_pdu_items")

CT = "1.2.840.10008.5.1.4.1.1.2"
GENERAL = "1.2.840.10008.5.1.4.37.1"


def pydicom_view(command: bytes) -> Dataset:
    return decode(BytesIO(command), True, True)


# --- command sets against known bytes ---------------------------------------------------


@pytest.mark.parametrize(
    ("command", "has_dataset", "vector"),
    [
        (CEchoRQ(7), False, "c_echo_rq_cmd"),
        (CEchoRSP(8, 0), False, "c_echo_rsp_cmd"),
        (CFindRQ(7, CT, Priority.LOW), True, "c_find_rq_cmd"),
        (CFindRSP(5, CT, FindStatus.PENDING), True, "c_find_rsp_cmd"),
    ],
)
def test_command_sets_match_pynetdicom_vectors(
    command: DimseCommand, has_dataset: bool, vector: str
) -> None:
    expected: bytes = getattr(messages, vector)[1:]  # drop the message control header
    assert encode_command(command, has_dataset) == expected
    assert decode_command(expected) == (command, has_dataset)


def test_c_echo_rsp_message_matches_pynetdicom_p_data_vector() -> None:
    assert encode_message(1, CEchoRSP(1, 0), None, 16382) == pdus.p_data_tf


@pytest.mark.parametrize(
    "command",
    [
        CFindRSP(1, GENERAL, FindStatus.UNABLE_TO_PROCESS, (0x00100020, 0x0040A504), "bad ID"),
        CFindRSP(65535, GENERAL, FindStatus.SUCCESS, (), "odd"),
        CFindRSP(2, GENERAL + "1", FindStatus.CANCEL),
        CCancelRQ(9),
        CFindRQ(3, GENERAL, Priority.HIGH),
    ],
)
def test_commands_read_by_pydicom(command: DimseCommand) -> None:
    raw = encode_command(command, False)
    ds = pydicom_view(raw)
    assert ds.CommandGroupLength == len(raw) - 12
    assert ds.CommandDataSetType == 0x0101
    assert len(raw) % 2 == 0
    if isinstance(command, CFindRSP):
        assert ds.CommandField == 0x8020
        assert ds.AffectedSOPClassUID == command.affected_sop_class_uid
        assert ds.MessageIDBeingRespondedTo == command.message_id_being_responded_to
        assert ds.Status == command.status
        if command.error_comment is not None:
            assert ds.ErrorComment == command.error_comment
        if command.offending_element:
            assert [int(t) for t in ds.OffendingElement] == list(command.offending_element)
    assert decode_command(raw) == (command, False)


def test_unknown_command_keeps_its_elements() -> None:
    ds = Dataset()
    ds.CommandGroupLength = 0
    ds.AffectedSOPClassUID = CT
    ds.CommandField = 0x0001  # C-STORE-RQ
    ds.MessageID = 4
    ds.Priority = 0
    ds.CommandDataSetType = 0x0000
    ds.AffectedSOPInstanceUID = "1.2.3.4"
    raw = _encode_pydicom(ds)
    command, has_dataset = decode_command(raw)
    assert has_dataset
    assert isinstance(command, UnknownCommand)
    assert command.command_field == 0x0001
    assert command.message_id == 4
    assert dict(command.elements)[0x1000] == b"1.2.3.4\x00"
    assert decode_command(encode_command(command, True)) == (command, True)


def _encode_pydicom(ds: Dataset) -> bytes:
    from pynetdicom.dsutils import encode

    data = encode(ds, True, True)
    assert data is not None
    return data


def test_missing_priority_defaults_to_medium() -> None:
    ds = Dataset()
    ds.AffectedSOPClassUID = GENERAL
    ds.CommandField = 0x0020
    ds.MessageID = 1
    ds.CommandDataSetType = 1
    assert decode_command(_encode_pydicom(ds)) == (CFindRQ(1, GENERAL, Priority.MEDIUM), True)


@pytest.mark.parametrize(
    ("why", "raw"),
    [
        ("truncated header", b"\x00\x00\x00\x01\x02\x00"),
        ("element overruns", b"\x00\x00\x00\x01\x09\x00\x00\x00\x20\x00"),
        ("element outside group 0000", b"\x08\x00\x00\x01\x02\x00\x00\x00\x20\x00"),
        ("no command field", b"\x00\x00\x00\x08\x02\x00\x00\x00\x01\x01"),
        ("no data set type", b"\x00\x00\x00\x01\x02\x00\x00\x00\x30\x00"),
        (
            "US of length 4",
            b"\x00\x00\x00\x01\x04\x00\x00\x00\x30\x00\x00\x00"
            b"\x00\x00\x00\x08\x02\x00\x00\x00\x01\x01",
        ),
        (
            "C-FIND-RQ without a message ID",
            b"\x00\x00\x00\x01\x02\x00\x00\x00\x20\x00\x00\x00\x00\x08\x02\x00\x00\x00\x01\x00",
        ),
    ],
)
def test_undecodable_command_sets(why: str, raw: bytes) -> None:
    with pytest.raises(InvalidCommand):
        decode_command(raw)


def test_values_out_of_range_are_local_errors() -> None:
    with pytest.raises(LocalProtocolError):
        encode_command(CFindRSP(70000, GENERAL, 0), False)
    with pytest.raises(LocalProtocolError):
        encode_command(CFindRSP(1, "1.2.\u00e9", 0), False)


# --- reassembly -----------------------------------------------------------------------


def pdv(context_id: int, command: bool, last: bool, data: bytes) -> PresentationDataValue:
    return PresentationDataValue(context_id, command, last, data)


FIND = encode_command(CFindRQ(1, GENERAL), True)
ECHO = encode_command(CEchoRQ(2), False)


def test_reassembly_across_pdvs_and_pdus() -> None:
    assembler = MessageAssembler({1, 3})
    assert assembler.add([pdv(1, True, False, FIND[:10])]) == []
    assert assembler.in_progress
    assert assembler.add([pdv(1, True, False, FIND[10:20]), pdv(1, True, True, FIND[20:])]) == []
    assert assembler.add([pdv(1, False, False, b"ab")]) == []
    done = assembler.add([pdv(1, False, True, b"cd"), pdv(3, True, True, ECHO)])
    assert done == [
        DimseMessage(1, CFindRQ(1, GENERAL), b"abcd"),
        DimseMessage(3, CEchoRQ(2), None),
    ]
    assert not assembler.in_progress


@pytest.mark.parametrize(
    ("why", "pdvs"),
    [
        ("context not accepted", [pdv(5, True, True, ECHO)]),
        ("data set without its command", [pdv(1, False, True, b"ab")]),
        (
            "command fragment where data set due",
            [pdv(1, True, True, FIND), pdv(1, True, True, FIND)],
        ),
        (
            "context change inside a message",
            [pdv(1, True, False, FIND[:4]), pdv(3, True, True, FIND)],
        ),
        ("data set on another context", [pdv(1, True, True, FIND), pdv(3, False, True, b"ab")]),
        ("undecodable command", [pdv(1, True, True, b"\x00\x00")]),
        ("message over the bound", [pdv(1, True, True, FIND), pdv(1, False, False, bytes(64))]),
    ],
)
def test_reassembly_errors(why: str, pdvs: list[PresentationDataValue]) -> None:
    with pytest.raises(InvalidParameter):
        MessageAssembler({1, 3}, max_message_length=len(FIND) + 32).add(pdvs)


# --- fragmentation --------------------------------------------------------------------


def split_pdus(data: bytes, max_pdu: int) -> list[PDataTF]:
    out: list[PDataTF] = []
    while data:
        result = read_pdu(data, max_pdu)
        assert result is not None
        pdu, used = result
        assert isinstance(pdu, PDataTF)
        out.append(pdu)
        data = data[used:]
    return out


def test_small_message_is_one_pdu_with_two_pdvs() -> None:
    rsp = CFindRSP(1, GENERAL, FindStatus.PENDING)
    (pdu,) = split_pdus(encode_message(1, rsp, b"xy", 16384), 16384)
    assert [(p.is_command, p.is_last) for p in pdu.pdvs] == [(True, True), (False, True)]
    assert pdu.pdvs[1].data == b"xy"


@pytest.mark.parametrize("max_pdu", [7, 8, 50, 100, 101, 255, 4096, 0])
@pytest.mark.parametrize("size", [1, 99, 100, 1000, 5000])
def test_fragments_honour_the_limit_and_reassemble(max_pdu: int, size: int) -> None:
    dataset = bytes(range(256)) * (size // 256) + bytes(size % 256)
    rsp = CFindRSP(3, GENERAL, FindStatus.PENDING)
    data = encode_message(5, rsp, dataset, max_pdu)
    pdus_ = split_pdus(data, max_pdu)
    for pdu in pdus_:
        assert max_pdu == 0 or sum(len(p.data) + 6 for p in pdu.pdvs) <= max_pdu
        assert all(p.data for p in pdu.pdvs)
    assembler = MessageAssembler({5})
    done = [m for pdu in pdus_ for m in assembler.add(pdu.pdvs)]
    assert done == [DimseMessage(5, rsp, dataset)]
    # Fill every PDU except the last: no PDU is left with room for another PDV.
    for pdu in pdus_[:-1]:
        assert max_pdu - sum(len(p.data) + 6 for p in pdu.pdvs) <= 6


def test_pynetdicom_reassembles_our_fragments() -> None:
    from tests.ul.ul_peer import decode_messages

    dataset = bytes(3000)
    data = encode_message(1, CFindRSP(9, GENERAL, FindStatus.PENDING), dataset, 1000)
    (message,) = decode_messages(data)
    assert message.command_set.MessageIDBeingRespondedTo == 9
    assert message.command_set.Status == 0xFF00
    assert message.data_set is not None
    assert message.data_set.getvalue() == dataset


def test_empty_data_set_or_command_is_refused() -> None:
    with pytest.raises(LocalProtocolError):
        fragment_message(1, ECHO, b"", 100)
    with pytest.raises(LocalProtocolError):
        fragment_message(1, b"", None, 100)
