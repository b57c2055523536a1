"""Property tests: round trips, chunking independence, and garbage that never escapes."""

from __future__ import annotations

import itertools
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpi_async.ul import (
    AcceptorPolicy,
    AssociationRequested,
    Connection,
    ConnectionClosed,
    ProtocolAborted,
)
from rpi_async.ul.codes import AbortReason, AbortSource, ContextResult, ItemType
from rpi_async.ul.commands import CCancelRQ, CEchoRQ, CFindRQ
from rpi_async.ul.dimse import encode_message
from rpi_async.ul.errors import RemoteProtocolError
from rpi_async.ul.fsm import State
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
    Pdu,
    PresentationDataValue,
    read_pdu,
    write_pdu,
)
from tests.ul.ul_peer import GENERAL, IMPLICIT, VERIFICATION, Acceptor

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMIT = 1 << 20

byte = st.integers(0, 255)
u16 = st.integers(0, 0xFFFF)
uids = st.lists(st.integers(0, 99999), min_size=2, max_size=6).map(
    lambda parts: ".".join(map(str, parts))
)
names = st.text(string.ascii_uppercase + string.digits + "_-.", min_size=1, max_size=16)
ae_titles = st.text(string.ascii_uppercase + string.digits + "_-", max_size=16)
small_bytes = st.binary(max_size=40)
known_types = {int(t) for t in ItemType}
raw_items = st.builds(RawItem, byte.filter(lambda t: t not in known_types), small_bytes)


def user_information(request: bool) -> st.SearchStrategy[UserInformation]:
    identity: st.SearchStrategy[UserIdentityRQ | UserIdentityAC | None]
    if request:
        identity = st.none() | st.builds(
            UserIdentityRQ, byte, st.booleans(), small_bytes, small_bytes
        )
        common = st.lists(
            st.builds(
                SopClassCommonExtendedNegotiation,
                uids,
                uids,
                st.lists(uids, max_size=3).map(tuple),
            ),
            max_size=2,
        ).map(tuple)
    else:
        identity = st.none() | st.builds(UserIdentityAC, small_bytes)
        common = st.just(())
    return st.builds(
        UserInformation,
        max_length=st.none() | st.integers(0, 0xFFFFFFFF),
        implementation_class_uid=st.none() | uids,
        implementation_version_name=st.none() | names,
        async_ops_window=st.none() | st.builds(AsyncOpsWindow, u16, u16),
        role_selections=st.lists(
            st.builds(RoleSelection, uids, st.booleans(), st.booleans()), max_size=3
        ).map(tuple),
        sop_class_extended=st.lists(
            st.builds(SopClassExtendedNegotiation, uids, small_bytes), max_size=2
        ).map(tuple),
        sop_class_common_extended=common,
        user_identity=identity,
        unknown=st.lists(raw_items, max_size=2).map(tuple),
    )


context_ids = st.lists(st.integers(0, 127), unique=True, max_size=5).map(
    lambda ids: [2 * i + 1 for i in ids]
)


@st.composite
def associate_rqs(draw: st.DrawFn) -> AAssociateRQ:
    contexts = tuple(
        PresentationContextRQ(cid, draw(uids), tuple(draw(st.lists(uids, min_size=1, max_size=3))))
        for cid in draw(context_ids)
    )
    return AAssociateRQ(
        draw(ae_titles),
        draw(ae_titles),
        contexts,
        draw(user_information(True)),
        draw(uids),
        draw(u16),
    )


@st.composite
def associate_acs(draw: st.DrawFn) -> AAssociateAC:
    contexts = tuple(
        PresentationContextAC(cid, draw(st.sampled_from(ContextResult)), draw(uids | st.just("")))
        for cid in draw(context_ids)
    )
    return AAssociateAC(
        draw(ae_titles),
        draw(ae_titles),
        contexts,
        draw(user_information(False)),
        draw(uids),
        draw(u16),
    )


pdata = st.builds(
    PDataTF,
    st.lists(
        st.builds(
            PresentationDataValue, byte, st.booleans(), st.booleans(), st.binary(max_size=64)
        ),
        min_size=1,
        max_size=4,
    ).map(tuple),
)
pdus: st.SearchStrategy[Pdu] = st.one_of(
    associate_rqs(),
    associate_acs(),
    st.builds(AAssociateRJ, byte, byte, byte),
    pdata,
    st.just(AReleaseRQ()),
    st.just(AReleaseRP()),
    st.builds(AAbort, byte, byte),
)


@SETTINGS
@given(pdus)
def test_write_read_write_is_identical(pdu: Pdu) -> None:
    data = write_pdu(pdu)
    parsed = read_pdu(data, LIMIT)
    assert parsed == (pdu, len(data))
    assert write_pdu(parsed[0]) == data


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(write_pdu(draw(pdus)))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "insert", "length"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(byte)
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 8))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif len(data) >= 6:
            data[2:6] = draw(st.integers(0, 0xFFFFFFFF)).to_bytes(4, "big")
    return bytes(data)


garbage = st.binary(max_size=300) | mutated()


def outcome(data: bytes, limit: int) -> tuple[Pdu, int] | RemoteProtocolError | None:
    try:
        return read_pdu(data, limit)
    except RemoteProtocolError as exc:
        return exc


@SETTINGS
@given(garbage, st.integers(0, LIMIT))
def test_codec_raises_only_remote_protocol_errors(data: bytes, limit: int) -> None:
    result = outcome(data, limit)
    if isinstance(result, RemoteProtocolError):
        assert str(result)
        assert 0 <= result.reason <= 6
    elif result is not None:
        pdu, used = result
        assert 6 <= used <= len(data)
        write_pdu(pdu)


# --- the connection ---------------------------------------------------------------------

POLICIES = [
    AcceptorPolicy("RPI_SCP"),
    AcceptorPolicy("RPI_SCP", accept_any_called_ae=True),
    AcceptorPolicy("RPI_SCP", calling_ae_titles=frozenset({"NOBODY"})),
]
GOOD_RQ = AAssociateRQ(
    "RPI_SCP",
    "FINDSCU",
    (
        PresentationContextRQ(1, GENERAL, (IMPLICIT,)),
        PresentationContextRQ(3, VERIFICATION, (IMPLICIT,)),
    ),
    UserInformation(max_length=16384),
)


@st.composite
def conversations(draw: st.DrawFn) -> bytes:
    """A valid requestor byte stream: association, some messages, perhaps a release."""
    parts = [write_pdu(GOOD_RQ)]
    for message_id in range(draw(st.integers(0, 4))):
        max_pdu = draw(st.sampled_from([0, 7, 20, 64, 16384]))
        kind = draw(st.sampled_from(["echo", "find", "cancel"]))
        if kind == "echo":
            parts.append(encode_message(3, CEchoRQ(message_id), None, max_pdu))
        elif kind == "find":
            dataset = draw(st.binary(min_size=1, max_size=200))
            parts.append(encode_message(1, CFindRQ(message_id, GENERAL), dataset, max_pdu))
        else:
            parts.append(encode_message(1, CCancelRQ(message_id), None, max_pdu))
    if draw(st.booleans()):
        parts.append(write_pdu(AReleaseRQ()))
    return b"".join(parts)


def run(chunks: list[bytes], policy: AcceptorPolicy) -> Acceptor:
    peer = Acceptor(policy=policy, conn=Connection(max_associate_pdu_length=4096))
    for chunk in chunks:
        peer.feed(chunk)
    return peer


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@SETTINGS
@given(
    conversations() | garbage,
    st.lists(st.integers(0, 10_000), max_size=8),
    st.sampled_from(POLICIES),
)
def test_whole_and_byte_at_a_time_give_the_same_events(
    data: bytes, cuts: list[int], policy: AcceptorPolicy
) -> None:
    whole = run([data], policy)
    trickle = run([data[i : i + 1] for i in range(len(data))], policy)
    pieces = run(chunked(data, cuts), policy)
    assert trickle.events == whole.events
    assert pieces.events == whole.events
    assert trickle.output == whole.output == pieces.output


def parse_all(data: bytes) -> list[Pdu]:
    out: list[Pdu] = []
    while data:
        parsed = read_pdu(data, 0)
        assert parsed is not None, "our own output ends inside a PDU"
        out.append(parsed[0])
        data = data[parsed[1] :]
    return out


@SETTINGS
@given(garbage | conversations().map(lambda d: d + b"\x09\x00"), st.sampled_from(POLICIES))
def test_connection_never_raises_and_always_ends(data: bytes, policy: AcceptorPolicy) -> None:
    peer = run([data], policy)
    conn = peer.conn
    sent = parse_all(peer.output)
    aborts = [e for e in peer.events if isinstance(e, ProtocolAborted)]
    for abort in aborts:
        assert abort.data_to_send == write_pdu(AAbort(AbortSource.SERVICE_PROVIDER, abort.reason))
    first = outcome(data, 4096)
    if isinstance(first, RemoteProtocolError):
        assert sent == [AAbort(AbortSource.SERVICE_PROVIDER, first.reason)]
    elif first is None:
        assert sent == []  # still waiting for the rest of the first PDU
    elif isinstance(first[0], AAbort):
        assert sent == []  # AA-2: just close
        assert conn.should_close
    elif not isinstance(first[0], AAssociateRQ):
        assert sent[0] == AAbort(AbortSource.SERVICE_PROVIDER, AbortReason.UNEXPECTED_PDU)
    else:
        assert isinstance(peer.events[0], AssociationRequested)
        assert isinstance(sent[0], AAssociateAC | AAssociateRJ)
    conn.artim_expired()
    peer.close()
    assert isinstance(peer.events[-1], ConnectionClosed)
    assert conn.state is State.STA1
    assert not conn.should_close
