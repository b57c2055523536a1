"""PDU codec: byte tables, cross-checks with pynetdicom, malformed input."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from pynetdicom.pdu import A_ASSOCIATE_RQ

from rpi_async.ul.codes import AbortReason, AbortSource, ContextResult, RejectResult
from rpi_async.ul.errors import (
    InvalidParameter,
    LocalProtocolError,
    PduTooLong,
    RemoteProtocolError,
    UnexpectedParameter,
    UnrecognizedPdu,
)
from rpi_async.ul.items import (
    AsyncOpsWindow,
    PresentationContextAC,
    PresentationContextRQ,
    RawItem,
    RoleSelection,
    SopClassCommonExtendedNegotiation,
    SopClassExtendedNegotiation,
    UserIdentityAC,
    UserIdentityRQ,
    UserInformation,
)
from rpi_async.ul.pdu import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PresentationDataValue,
    read_pdu,
    write_pdu,
)

encoded = pytest.importorskip("pynetdicom.tests.encoded_pdu_items")

APP_CONTEXT = b"1.2.840.10008.3.1.1.1"


def item(item_type: int, value: bytes) -> bytes:
    return struct.pack(">BxH", item_type, len(value)) + value


def associate(
    pdu_type: int, items: bytes, called: bytes = b"RPI", calling: bytes = b"SCU"
) -> bytes:
    body = (
        b"\x00\x01\x00\x00" + called.ljust(16, b" ") + calling.ljust(16, b" ") + bytes(32) + items
    )
    return struct.pack(">BxI", pdu_type, len(body)) + body


def read_whole(data: bytes, max_len: int = 1 << 20) -> object:
    result = read_pdu(data, max_len)
    assert result is not None
    pdu, used = result
    assert used == len(data)
    return pdu


# --- byte tables ----------------------------------------------------------------------

FIXED_TABLE = [
    (AAssociateRJ(1, 1, 7), "03 00 00000004 00 01 01 07"),
    (AAssociateRJ(2, 3, 2), "03 00 00000004 00 02 03 02"),
    (AReleaseRQ(), "05 00 00000004 00000000"),
    (AReleaseRP(), "06 00 00000004 00000000"),
    (AAbort(), "07 00 00000004 00 00 00 00"),
    (
        AAbort(AbortSource.SERVICE_PROVIDER, AbortReason.INVALID_PDU_PARAMETER_VALUE),
        "07 00 00000004 00 00 02 06",
    ),
    (
        PDataTF((PresentationDataValue(1, True, True, b"\xaa\xbb"),)),
        "04 00 00000008 00000004 01 03 aabb",
    ),
    (
        PDataTF(
            (
                PresentationDataValue(3, True, False, b"\x01"),
                PresentationDataValue(3, False, True, b"\x02\x03"),
            )
        ),
        "04 00 0000000f 00000003 03 01 01 00000004 03 02 0203",
    ),
]


@pytest.mark.parametrize(("pdu", "hex_bytes"), FIXED_TABLE)
def test_fixed_pdus_match_known_bytes(pdu: object, hex_bytes: str) -> None:
    data = bytes.fromhex(hex_bytes)
    assert write_pdu(pdu) == data  # type: ignore[arg-type]
    assert read_whole(data) == pdu


def test_associate_rq_known_bytes_both_ways() -> None:
    rq = AAssociateRQ(
        called_ae_title="RPI",
        calling_ae_title="SCU",
        presentation_contexts=(
            PresentationContextRQ(1, "1.2.840.10008.1.1", ("1.2.840.10008.1.2",)),
        ),
        user_information=UserInformation(max_length=16384, implementation_class_uid="1.2.3"),
    )
    context = (
        b"\x01\x00\x00\x00" + item(0x30, b"1.2.840.10008.1.1") + item(0x40, b"1.2.840.10008.1.2")
    )
    user = item(0x51, b"\x00\x00\x40\x00") + item(0x52, b"1.2.3")
    data = associate(1, item(0x10, APP_CONTEXT) + item(0x20, context) + item(0x50, user))
    assert write_pdu(rq) == data
    assert read_whole(data) == rq


def test_associate_ac_known_bytes_both_ways() -> None:
    ac = AAssociateAC(
        called_ae_title="RPI",
        calling_ae_title="SCU",
        presentation_contexts=(
            PresentationContextAC(1, ContextResult.ACCEPTANCE, "1.2.840.10008.1.2"),
            PresentationContextAC(3, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, "1.2"),
        ),
        user_information=UserInformation(
            max_length=16384,
            implementation_class_uid="1.2.3",
            implementation_version_name="V1",
            role_selections=(RoleSelection("1.2.840.10008.1.1", True, False),),
            user_identity=UserIdentityAC(b""),
        ),
    )
    items = (
        item(0x10, APP_CONTEXT)
        + item(0x21, b"\x01\x00\x00\x00" + item(0x40, b"1.2.840.10008.1.2"))
        + item(0x21, b"\x03\x00\x03\x00" + item(0x40, b"1.2"))
        + item(
            0x50,
            item(0x51, b"\x00\x00\x40\x00")
            + item(0x52, b"1.2.3")
            + item(0x54, b"\x00\x111.2.840.10008.1.1\x01\x00")
            + item(0x55, b"V1")
            + item(0x59, b"\x00\x00"),
        )
    )
    data = associate(2, items)
    assert write_pdu(ac) == data
    assert read_whole(data) == ac


@pytest.mark.parametrize(
    "name",
    [
        "a_associate_rq",
        "a_associate_rq_user_async",
        "a_associate_rq_role",
        "a_associate_rq_user_id_user_pass",
        "a_associate_rq_user_id_ext_neg",
        "a_associate_ac",
        "a_associate_ac_zero_ts",
        "a_associate_ac_no_ts",
        "a_associate_rj",
        "a_release_rq",
        "a_release_rp",
        "a_abort",
        "a_p_abort",
        "p_data_tf",
    ],
)
def test_pynetdicom_test_vectors_decode_and_survive_a_round_trip(name: str) -> None:
    data: bytes = getattr(encoded, name)
    pdu = read_whole(data)
    again = write_pdu(pdu)  # type: ignore[arg-type]
    assert read_whole(again) == pdu


def test_pynetdicom_vector_fields() -> None:
    rq = read_whole(encoded.a_associate_rq_user_async)
    assert isinstance(rq, AAssociateRQ)
    assert (rq.called_ae_title, rq.calling_ae_title) == ("ANY-SCP", "ECHOSCU")
    info = rq.user_information
    assert info.max_length == 16382
    assert info.implementation_version_name == "PYNETDICOM_090"
    assert info.async_ops_window == AsyncOpsWindow(5, 5)
    assert info.user_identity == UserIdentityRQ(1, True, b"pynetdicom", b"")

    role = read_whole(encoded.a_associate_rq_role)
    assert isinstance(role, AAssociateRQ)
    assert role.user_information.role_selections[0].sop_class_uid == "1.2.840.10008.5.1.4.1.1.2"

    no_ts = read_whole(encoded.a_associate_ac_no_ts)
    assert isinstance(no_ts, AAssociateAC)
    assert no_ts.presentation_contexts[0] == PresentationContextAC(
        1, ContextResult.ABSTRACT_SYNTAX_NOT_SUPPORTED, ""
    )
    assert read_whole(encoded.a_p_abort) == AAbort(2, 4)


def test_flawed_pynetdicom_vectors_are_refused() -> None:
    # This A-ASSOCIATE-AC's user information item claims 72 bytes but its PDU holds
    # only 58 of them: a length that lies.
    with pytest.raises(InvalidParameter):
        read_pdu(encoded.a_associate_ac_user, 1 << 20)
    # Named "rq" but an A-ASSOCIATE-AC, carrying a sub-item only a request may carry.
    with pytest.raises(UnexpectedParameter):
        read_pdu(encoded.a_associate_rq_com_ext_neg, 1 << 20)


def test_ours_decoded_by_pynetdicom() -> None:
    rq = AAssociateRQ(
        "RPI",
        "SCU",
        (
            PresentationContextRQ(
                7, "1.2.840.10008.1.1", ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
            ),
        ),
        UserInformation(
            max_length=4096,
            implementation_class_uid="1.2.3.4",
            implementation_version_name="X",
            role_selections=(RoleSelection("1.2.840.10008.1.1", True, True),),
            sop_class_extended=(SopClassExtendedNegotiation("1.2.840.10008.1.1", b"\x01\x02"),),
            sop_class_common_extended=(
                SopClassCommonExtendedNegotiation("1.2.3", "1.2.4", ("1.2.5", "1.2.6")),
            ),
            user_identity=UserIdentityRQ(2, True, b"user", b"secret"),
        ),
    )
    theirs = A_ASSOCIATE_RQ()
    theirs.decode(write_pdu(rq))
    primitive = theirs.to_primitive()
    assert primitive.called_ae_title == "RPI"
    assert primitive.calling_ae_title == "SCU"
    (context,) = primitive.presentation_context_definition_list
    assert context.context_id == 7
    assert context.transfer_syntax == ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"]
    kinds: dict[str, Any] = {type(x).__name__: x for x in primitive.user_information}
    assert kinds["MaximumLengthNotification"].maximum_length_received == 4096
    assert kinds["UserIdentityNegotiation"].secondary_field == b"secret"
    assert kinds["SOPClassCommonExtendedNegotiation"].related_general_sop_class_identification == [
        "1.2.5",
        "1.2.6",
    ]
    assert kinds["SCP_SCU_RoleSelectionNegotiation"].scp_role is True


# --- lenient where PS3.8 says so --------------------------------------------------------


def test_reserved_fields_are_not_tested() -> None:
    data = bytearray(write_pdu(AAbort(2, 1)))
    data[1] = 0xFF  # PDU reserved byte
    data[6] = data[7] = 0xEE  # A-ABORT reserved bytes
    assert read_whole(bytes(data)) == AAbort(2, 1)
    rq = bytearray(encoded.a_associate_rq)
    rq[8:10] = b"\xab\xcd"  # reserved after protocol version
    rq[42:74] = b"\x77" * 32  # 32 reserved bytes
    assert read_whole(bytes(rq)) == read_whole(encoded.a_associate_rq)


def test_unknown_items_are_skipped_and_unknown_sub_items_kept() -> None:
    context = b"\x01\x00\x00\x00" + item(0x30, b"1.2") + item(0x7F, b"junk") + item(0x40, b"1.3")
    user = item(0x51, b"\x00\x00\x10\x00") + item(0x6A, b"future")
    data = associate(
        1, item(0x10, APP_CONTEXT) + item(0x99, b"xyz") + item(0x20, context) + item(0x50, user)
    )
    rq = read_whole(data)
    assert isinstance(rq, AAssociateRQ)
    assert rq.presentation_contexts == (PresentationContextRQ(1, "1.2", ("1.3",)),)
    assert rq.user_information.unknown == (RawItem(0x6A, b"future"),)


def test_uid_nul_padding_and_ae_title_spaces_are_stripped() -> None:
    context = b"\x01\x00\x00\x00" + item(0x30, b"1.2.840.10008.1.1\x00") + item(0x40, b"1.2\x00")
    data = associate(
        1, item(0x10, APP_CONTEXT + b"\x00") + item(0x20, context), called=b"  RPI", calling=b"SCU"
    )
    rq = read_whole(data)
    assert isinstance(rq, AAssociateRQ)
    assert rq.called_ae_title == "RPI"
    assert rq.application_context_name == APP_CONTEXT.decode()
    assert rq.presentation_contexts[0].abstract_syntax == "1.2.840.10008.1.1"
    assert rq.presentation_contexts[0].transfer_syntaxes == ("1.2",)


def test_missing_user_information_is_tolerated() -> None:
    rq = read_whole(associate(1, item(0x10, APP_CONTEXT)))
    assert isinstance(rq, AAssociateRQ)
    assert rq.user_information == UserInformation()
    assert rq.presentation_contexts == ()


# --- incomplete input -------------------------------------------------------------------


def test_every_strict_prefix_needs_more_data() -> None:
    data = encoded.a_associate_rq
    for cut in range(len(data)):
        assert read_pdu(data[:cut], 1 << 20) is None
    assert read_pdu(bytearray(data) + b"\x05\x00", 1 << 20) == (read_whole(data), len(data))
    assert read_pdu(memoryview(data), 1 << 20) == (read_whole(data), len(data))


# --- strict on what lies ----------------------------------------------------------------


def test_length_over_the_limit_is_refused_from_the_header_alone() -> None:
    header = b"\x04\x00\xff\xff\xff\xff"
    with pytest.raises(PduTooLong) as info:
        read_pdu(header, 16384)
    assert info.value.reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    with pytest.raises(PduTooLong):
        read_pdu(b"\x01\x00\x00\x01\x00\x00", 16384, max_associate_len=1024)
    # The association limit does not apply to P-DATA, and the reverse.
    assert read_pdu(b"\x01\x00\x00\x00\x08\x00", 1 << 20, max_associate_len=1 << 20) is None
    with pytest.raises(PduTooLong):
        read_pdu(b"\x04\x00\x00\x00\x50\x00", 0x4000, max_associate_len=1 << 20)


MALFORMED = [
    ("unknown PDU type", "08 00 00000004 00000000", UnrecognizedPdu),
    ("PDU type zero", "00 00 00000000", UnrecognizedPdu),
    ("A-ABORT with length 5", "07 00 00000005 0000000000", InvalidParameter),
    ("A-RELEASE-RQ with length 0", "05 00 00000000", InvalidParameter),
    ("A-ASSOCIATE-RJ with a huge length", "03 00 ffffffff", InvalidParameter),
    ("P-DATA with no PDV", "04 00 00000000", InvalidParameter),
    ("PDV item length zero", "04 00 00000006 00000000 0103", InvalidParameter),
    ("PDV item length one", "04 00 00000006 00000001 0103", InvalidParameter),
    ("PDV item overruns the PDU", "04 00 00000008 00000005 0103 aabb", InvalidParameter),
    ("trailing bytes after a PDV", "04 00 00000009 00000003 0103 aa bbcc", InvalidParameter),
    ("A-ASSOCIATE-RQ shorter than its fixed part", "01 00 00000004 00010000", InvalidParameter),
]


@pytest.mark.parametrize(("why", "hex_bytes", "error"), MALFORMED)
def test_malformed_pdus(why: str, hex_bytes: str, error: type[RemoteProtocolError]) -> None:
    with pytest.raises(error):
        read_pdu(bytes.fromhex(hex_bytes), 1 << 20)


def _rq_items(*items: bytes) -> bytes:
    return associate(1, b"".join(items))


GOOD_CONTEXT = item(0x20, b"\x01\x00\x00\x00" + item(0x30, b"1.2") + item(0x40, b"1.2"))
BAD_ASSOCIATES = [
    (
        "two application contexts",
        _rq_items(item(0x10, b"1"), item(0x10, b"1")),
        UnexpectedParameter,
    ),
    ("item length overruns the PDU", associate(1, item(0x10, APP_CONTEXT))[:-1], None),
    (
        "item length lies",
        _rq_items(item(0x10, APP_CONTEXT), b"\x20\x00\x00\x40\x01\x00\x00\x00"),
        InvalidParameter,
    ),
    ("truncated item header", _rq_items(item(0x10, APP_CONTEXT), b"\x20\x00"), InvalidParameter),
    (
        "context with no abstract syntax",
        _rq_items(item(0x10, APP_CONTEXT), item(0x20, b"\x01\x00\x00\x00" + item(0x40, b"1"))),
        InvalidParameter,
    ),
    (
        "context item shorter than 4",
        _rq_items(item(0x10, APP_CONTEXT), item(0x20, b"\x01\x00")),
        InvalidParameter,
    ),
    (
        "two abstract syntaxes",
        _rq_items(
            item(0x10, APP_CONTEXT),
            item(0x20, b"\x01\x00\x00\x00" + item(0x30, b"1") + item(0x30, b"2")),
        ),
        UnexpectedParameter,
    ),
    (
        "even context ID",
        _rq_items(item(0x10, APP_CONTEXT), item(0x20, b"\x02\x00\x00\x00" + item(0x30, b"1"))),
        InvalidParameter,
    ),
    (
        "repeated context ID",
        _rq_items(item(0x10, APP_CONTEXT), GOOD_CONTEXT, GOOD_CONTEXT),
        InvalidParameter,
    ),
    (
        "AC context in an RQ",
        _rq_items(item(0x10, APP_CONTEXT), item(0x21, b"\x01\x00\x00\x00")),
        UnexpectedParameter,
    ),
    (
        "sub-item at top level",
        _rq_items(item(0x10, APP_CONTEXT), item(0x51, bytes(4))),
        UnexpectedParameter,
    ),
    (
        "maximum length of 3 bytes",
        _rq_items(item(0x10, APP_CONTEXT), item(0x50, item(0x51, bytes(3)))),
        InvalidParameter,
    ),
    (
        "two maximum lengths",
        _rq_items(item(0x10, APP_CONTEXT), item(0x50, item(0x51, bytes(4)) * 2)),
        UnexpectedParameter,
    ),
    (
        "user identity response in an RQ",
        _rq_items(item(0x10, APP_CONTEXT), item(0x50, item(0x59, b"\x00\x00"))),
        UnexpectedParameter,
    ),
    (
        "user identity field overruns",
        _rq_items(item(0x10, APP_CONTEXT), item(0x50, item(0x58, b"\x01\x00\x00\x09ab\x00\x00"))),
        InvalidParameter,
    ),
    (
        "role selection UID length lies",
        _rq_items(item(0x10, APP_CONTEXT), item(0x50, item(0x54, b"\x00\x05ab\x01\x00"))),
        InvalidParameter,
    ),
    (
        "role value 2",
        _rq_items(item(0x10, APP_CONTEXT), item(0x50, item(0x54, b"\x00\x02ab\x02\x00"))),
        InvalidParameter,
    ),
    (
        "common extended trailing bytes",
        _rq_items(
            item(0x10, APP_CONTEXT),
            item(0x50, item(0x57, b"\x00\x01a\x00\x01b\x00\x00zz")),
        ),
        InvalidParameter,
    ),
]


@pytest.mark.parametrize(("why", "data", "error"), BAD_ASSOCIATES)
def test_malformed_associate_items(
    why: str, data: bytes, error: type[RemoteProtocolError] | None
) -> None:
    if error is None:  # the PDU length is honest here: the PDU is just incomplete
        assert read_pdu(data, 1 << 20) is None
        return
    with pytest.raises(error):
        read_pdu(data, 1 << 20)


def test_ac_context_with_unknown_result_is_invalid() -> None:
    context = item(0x21, b"\x01\x00\x09\x00" + item(0x40, b"1.2"))
    with pytest.raises(InvalidParameter):
        read_pdu(associate(2, item(0x10, APP_CONTEXT) + context), 1 << 20)


def test_accepted_ac_context_needs_a_transfer_syntax() -> None:
    context = item(0x21, b"\x01\x00\x00\x00")
    with pytest.raises(InvalidParameter):
        read_pdu(associate(2, item(0x10, APP_CONTEXT) + context), 1 << 20)


# --- local errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "pdu",
    [
        AAssociateRQ("A" * 17, "SCU", ()),
        AAssociateRQ("RPI", "SCU", (PresentationContextRQ(256, "1.2", ("1.2",)),)),
        AAssociateRQ("RPI", "SCU", (), UserInformation(max_length=-1)),
        AAssociateRQ("RPI", "SCU", (PresentationContextRQ(1, "1.2" * 30000, ()),)),
        AAssociateRJ(RejectResult.PERMANENT, 1, 300),
        AAssociateRQ("RPI", "\u20ac", ()),
    ],
)
def test_values_that_cannot_be_encoded_raise_local_errors(pdu: object) -> None:
    with pytest.raises(LocalProtocolError):
        write_pdu(pdu)  # type: ignore[arg-type]


def test_write_pdu_refuses_what_is_not_a_pdu() -> None:
    with pytest.raises(LocalProtocolError):
        write_pdu("hello")  # type: ignore[arg-type]


def test_request_without_application_context_is_read_for_negotiation_to_reject() -> None:
    # PS3.8 Table 9-21: the answer is A-ASSOCIATE-RJ (1, 1, 2), so the request is read.
    parsed = read_pdu(_rq_items(GOOD_CONTEXT), 1 << 20)
    assert parsed is not None
    rq = parsed[0]
    assert isinstance(rq, AAssociateRQ)
    assert rq.application_context_name == ""
