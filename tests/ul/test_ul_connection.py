"""Connection: a pynetdicom-encoded requestor against our acceptor, in memory."""

from __future__ import annotations

import struct

import pytest

from rpi_async.dicom.status import FindStatus
from rpi_async.ul import (
    NEED_DATA,
    Aborted,
    AssociationRequested,
    Connection,
    ConnectionClosed,
    DimseMessage,
    ProtocolAborted,
    ReleaseConfirmed,
    ReleaseRequested,
    TimerRequest,
    negotiate,
)
from rpi_async.ul.codes import AbortReason, AbortSource, ContextResult, PduType
from rpi_async.ul.commands import (
    CCancelRQ,
    CEchoRQ,
    CFindRQ,
    CFindRSP,
    Priority,
    encode_command,
)
from rpi_async.ul.connection import ASSUMED_PEER_MAX_PDU_LENGTH
from rpi_async.ul.errors import LocalProtocolError
from rpi_async.ul.fsm import State
from rpi_async.ul.items import PresentationContextAC, UserInformation
from rpi_async.ul.negotiation import accepted_contexts
from rpi_async.ul.pdu import (
    AAbort,
    AAssociateAC,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    PresentationDataValue,
    RequestCache,
    read_pdu,
    write_pdu,
)
from tests.ul.ul_peer import (
    CT_STORAGE,
    GENERAL,
    IMPLICIT,
    POLICY,
    VERIFICATION,
    Acceptor,
    associate_rq,
    c_cancel_rq,
    c_echo_rq,
    c_find_rq,
    decode_ac,
    decode_messages,
    identifier,
)

RELEASE_RQ = write_pdu(AReleaseRQ())
RELEASE_RP = write_pdu(AReleaseRP())
CONTEXTS = ((1, GENERAL, (IMPLICIT,)), (3, VERIFICATION, (IMPLICIT,)), (5, CT_STORAGE, (IMPLICIT,)))


def state_of(conn: Connection) -> State:
    return conn.state  # read afresh: a plain attribute test would be narrowed by mypy


def established(max_length: int = 16382) -> Acceptor:
    peer = Acceptor()
    peer.feed(associate_rq(contexts=CONTEXTS, max_length=max_length))
    assert peer.conn.is_established
    peer.sent.clear()
    peer.events.clear()
    return peer


def abort_of(peer: Acceptor) -> ProtocolAborted:
    aborts = [e for e in peer.events if isinstance(e, ProtocolAborted)]
    assert len(aborts) == 1, peer.events
    (abort,) = aborts
    assert abort.data_to_send == write_pdu(AAbort(AbortSource.SERVICE_PROVIDER, abort.reason))
    assert peer.conn.state is State.STA13
    return abort


def test_a_whole_association() -> None:
    peer = Acceptor()
    conn = peer.conn
    assert conn.take_timer_request() is TimerRequest.START_ARTIM
    assert conn.artim_running

    peer.feed(associate_rq(contexts=CONTEXTS))
    assert isinstance(peer.events[0], AssociationRequested)
    assert conn.take_timer_request() is TimerRequest.STOP_ARTIM
    assert conn.is_established
    assert not conn.artim_running
    ac = decode_ac(peer.sent[0]).to_primitive()
    results = [(cx.context_id, cx.result) for cx in ac.presentation_context_definition_results_list]
    assert results == [(1, 0), (3, 0), (5, 3)]
    assert set(conn.accepted_contexts) == {1, 3}
    assert conn.peer_max_pdu_length == 16382

    peer.feed(c_echo_rq(3, 1))
    (echo_rsp,) = decode_messages(peer.sent[1])
    assert echo_rsp.command_set.CommandField == 0x8030
    assert echo_rsp.command_set.MessageIDBeingRespondedTo == 1

    query = identifier()
    peer.feed(c_find_rq(1, 2, query) + c_cancel_rq(1, 2))
    assert peer.events[2] == DimseMessage(1, CFindRQ(2, GENERAL, Priority.LOW), query)
    assert peer.events[3] == DimseMessage(1, CCancelRQ(2), None)
    pending, success = decode_messages(peer.sent[2] + peer.sent[3])
    assert pending.command_set.Status == FindStatus.PENDING
    assert pending.data_set is not None
    assert pending.data_set.getvalue() == peer.response
    assert success.command_set.Status == FindStatus.SUCCESS
    assert success.command_set.CommandDataSetType == 0x0101

    peer.feed(RELEASE_RQ)
    assert isinstance(peer.events[-1], ReleaseRequested)
    assert peer.sent[-1] == RELEASE_RP
    assert conn.state is State.STA13
    assert conn.take_timer_request() is TimerRequest.START_ARTIM
    assert not conn.should_close  # the requestor closes first (PS3.8 §7.2)

    peer.close()
    assert peer.events[-1] == ConnectionClosed(aborted=False)
    assert conn.take_timer_request() is TimerRequest.STOP_ARTIM
    assert state_of(conn) is State.STA1
    assert conn.next_event() == ConnectionClosed(aborted=False)


def test_fragmented_request_is_reassembled() -> None:
    peer = established()
    query = identifier("X" * 64)
    peer.feed(c_find_rq(1, 7, query, max_pdu=40))
    assert peer.events[0] == DimseMessage(1, CFindRQ(7, GENERAL, Priority.LOW), query)


def test_responses_honour_the_peer_maximum_length() -> None:
    peer = established(max_length=100)
    peer.response = bytes(500)
    peer.feed(c_find_rq(1, 1, identifier()))
    data = b"".join(peer.sent)
    offset = 0
    while offset < len(data):
        parsed = read_pdu(data[offset:], 100)
        assert parsed is not None
        offset += parsed[1]
    pending, _ = decode_messages(data)
    assert pending.data_set is not None
    assert pending.data_set.getvalue() == bytes(500)


def test_absent_maximum_length_is_assumed_conservative() -> None:
    peer = Acceptor()
    data = bytearray(associate_rq())
    # Turn the maximum length sub-item (0x51) into an unknown one (0x6F).
    at = data.index(b"\x51\x00\x00\x04")
    data[at] = 0x6F
    peer.feed(bytes(data))
    assert peer.conn.is_established
    assert peer.conn.peer_max_pdu_length == ASSUMED_PEER_MAX_PDU_LENGTH


def test_byte_at_a_time_gives_the_same_story() -> None:
    stream = (
        associate_rq(contexts=CONTEXTS)
        + c_echo_rq(3, 1)
        + c_find_rq(1, 2, identifier(), max_pdu=64)
        + RELEASE_RQ
    )
    whole = Acceptor()
    whole.feed(stream)
    trickle = Acceptor()
    for i in range(len(stream)):
        trickle.feed(stream[i : i + 1])
    assert trickle.events == whole.events
    assert trickle.output == whole.output
    assert len(whole.events) == 4


# --- protocol errors ------------------------------------------------------------------


def test_unknown_pdu_type_before_association() -> None:
    peer = Acceptor()
    peer.feed(b"\x0a\x00\x00\x00\x00\x02\x00\x00")
    assert abort_of(peer).reason == AbortReason.UNRECOGNIZED_PDU
    assert peer.conn.last_transition is not None
    assert peer.conn.last_transition[2].value == "AA-1"
    peer.feed(associate_rq())  # discarded: the stream cannot be trusted any more
    assert peer.conn.buffered_bytes == 0
    assert len(peer.events) == 1
    assert peer.conn.artim_expired() == b""
    assert peer.conn.should_close


def test_pdata_before_association_is_unexpected() -> None:
    peer = Acceptor()
    peer.feed(c_echo_rq(1, 1))
    assert abort_of(peer).reason == AbortReason.UNEXPECTED_PDU


def test_lying_item_length_in_the_request() -> None:
    data = bytearray(associate_rq())
    at = 6 + 68 + 4 + 21  # first presentation context item, after the application context
    assert data[at] == 0x20
    data[at + 2 : at + 4] = b"\xff\xff"
    peer = Acceptor()
    peer.feed(bytes(data))
    assert abort_of(peer).reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_request_over_the_associate_limit_is_refused_from_its_header() -> None:
    peer = Acceptor(conn=Connection(max_associate_pdu_length=1024))
    peer.feed(b"\x01\x00\x00\x00\x04\x01")  # claims 1025 bytes; nothing else sent
    assert abort_of(peer).reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_pdata_over_our_maximum_is_refused_from_its_header() -> None:
    peer = established()
    peer.feed(b"\x04\x00\xff\xff\xff\xff")
    assert abort_of(peer).reason == AbortReason.INVALID_PDU_PARAMETER_VALUE
    peer2 = established()
    peer2.feed(struct.pack(">BxI", 4, 16385))
    assert abort_of(peer2).reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_second_associate_request_is_aborted() -> None:
    peer = established()
    peer.feed(associate_rq())
    assert abort_of(peer).reason == AbortReason.UNEXPECTED_PDU
    assert peer.conn.last_transition is not None
    assert peer.conn.last_transition[2].value == "AA-8"


def test_pdata_while_the_request_is_pending_is_aborted() -> None:
    conn = Connection()
    conn.connection_made()
    conn.receive_data(associate_rq() + c_echo_rq(3, 1))
    assert isinstance(conn.next_event(), AssociationRequested)
    event = conn.next_event()  # no answer yet: the P-DATA arrived in Sta3
    assert isinstance(event, ProtocolAborted)
    assert event.reason == AbortReason.UNEXPECTED_PDU


def test_pipelined_pdata_after_a_prompt_acceptance_is_served() -> None:
    peer = Acceptor()
    peer.feed(associate_rq(contexts=CONTEXTS) + c_echo_rq(3, 1))
    assert peer.events[1] == DimseMessage(3, CEchoRQ(1), None)


@pytest.mark.parametrize(
    ("why", "pdvs"),
    [
        ("zero-length PDV", "00000000"),
        ("data set without its command", "00000004 01 02 abcd"),
        ("context never accepted", "00000004 05 03 abcd"),
        ("context never proposed", "00000004 07 03 abcd"),
        ("undecodable command", "00000004 01 03 abcd"),
    ],
)
def test_bad_pdata_in_an_association(why: str, pdvs: str) -> None:
    body = bytes.fromhex(pdvs)
    peer = established()
    peer.feed(struct.pack(">BxI", 4, len(body)) + body)
    assert abort_of(peer).reason == AbortReason.INVALID_PDU_PARAMETER_VALUE


def test_truncated_pdu_then_close() -> None:
    peer = established()
    peer.feed(c_echo_rq(3, 1)[:-3])
    assert peer.events == []
    peer.close()
    assert peer.events == [ConnectionClosed(aborted=True)]
    assert peer.sent == []


def test_peer_abort() -> None:
    peer = established()
    peer.feed(write_pdu(AAbort(AbortSource.SERVICE_PROVIDER, 1)) + c_echo_rq(3, 1))
    assert peer.events == [Aborted(2, 1)]
    assert peer.conn.should_close
    peer.close()
    assert peer.events[-1] == ConnectionClosed(aborted=False)
    assert not peer.conn.should_close


def test_idle_connection_times_out_in_sta2() -> None:
    conn = Connection()
    conn.connection_made()
    conn.receive_data(b"\x01\x00")
    assert conn.next_event() is NEED_DATA
    conn.take_timer_request()
    assert conn.artim_expired() == b""
    assert conn.should_close
    assert conn.take_timer_request() is TimerRequest.STOP_ARTIM
    conn.connection_lost()
    assert conn.next_event() == ConnectionClosed(aborted=False)


def test_stale_timer_is_ignored() -> None:
    peer = established()
    assert peer.conn.artim_expired() == b""
    assert peer.conn.is_established


def test_release_collision_on_the_acceptor_side() -> None:
    peer = established()
    conn = peer.conn
    sent = conn.release_request()
    assert sent == RELEASE_RQ
    states = [conn.state]
    conn.receive_data(RELEASE_RQ)
    assert conn.next_event() == ReleaseRequested()
    states.append(conn.state)
    conn.receive_data(RELEASE_RP)
    assert conn.next_event() == ReleaseConfirmed()
    states.append(conn.state)
    assert conn.release_response() == RELEASE_RP
    states.append(conn.state)
    assert states == [State.STA7, State.STA10, State.STA12, State.STA13]


def test_responses_may_still_go_out_after_a_release_request() -> None:
    peer = established()
    conn = peer.conn
    conn.receive_data(c_find_rq(1, 4, identifier()) + RELEASE_RQ)
    message = conn.next_event()
    assert isinstance(message, DimseMessage)
    assert conn.next_event() == ReleaseRequested()
    assert conn.can_send  # Sta8: AR-7 still sends P-DATA
    assert not conn.is_established
    data = conn.send_message(1, CFindRSP(4, GENERAL, FindStatus.SUCCESS))
    assert data[0] == PduType.P_DATA_TF
    conn.release_response()
    assert not conn.can_send


def test_local_misuse_raises_and_changes_nothing() -> None:
    conn = Connection()
    with pytest.raises(LocalProtocolError):
        conn.receive_data(b"x")
    conn.connection_made()
    with pytest.raises(LocalProtocolError):
        conn.send_message(1, CFindRSP(1, GENERAL, 0))
    peer = established()
    with pytest.raises(LocalProtocolError, match="not accepted"):
        peer.conn.send_message(5, CFindRSP(1, CT_STORAGE, 0))
    assert peer.conn.is_established
    fresh = Connection()
    fresh.connection_made()
    fresh.receive_data(associate_rq())
    assert isinstance(fresh.next_event(), AssociationRequested)
    stray = PresentationContextAC(99, ContextResult.ACCEPTANCE, IMPLICIT)
    with pytest.raises(LocalProtocolError, match="never proposed"):
        fresh.accept(AAssociateAC("A", "B", (stray,), UserInformation(max_length=16384)))
    assert fresh.state is State.STA3
    with pytest.raises(LocalProtocolError):
        fresh.accept(AAssociateAC("A" * 17, "B", ()))
    assert fresh.state is State.STA3


def test_multiple_messages_in_one_pdu() -> None:
    echo = encode_command(CEchoRQ(1), False)
    echo2 = encode_command(CEchoRQ(2), False)
    pdu = PDataTF(
        (PresentationDataValue(3, True, True, echo), PresentationDataValue(3, True, True, echo2))
    )
    peer = established()
    peer.feed(write_pdu(pdu))
    assert [e.command for e in peer.events if isinstance(e, DimseMessage)] == [
        CEchoRQ(1),
        CEchoRQ(2),
    ]


def test_the_same_request_is_decoded_once_and_answered_alike() -> None:
    """Connections given one request cache share one value per request; the acceptance
    memo keys on it."""
    requests = RequestCache()
    first, second = Connection(requests=requests), Connection(requests=requests)
    replies = []
    for conn in (first, second):
        conn.connection_made()
        conn.receive_data(associate_rq())
        event = conn.next_event()
        assert isinstance(event, AssociationRequested)
        replies.append(event.request)
    assert replies[0] is replies[1]
    rq = replies[0]
    ac = negotiate(rq, POLICY).reply
    assert isinstance(ac, AAssociateAC)
    assert first.accept(ac) == second.accept(ac) == write_pdu(ac)
    assert dict(first.accepted_contexts) == accepted_contexts(rq, ac)
    assert second.accepted_contexts is first.accepted_contexts


def test_without_a_request_cache_each_connection_decodes_its_own() -> None:
    values = []
    for conn in (Connection(), Connection()):
        conn.connection_made()
        conn.receive_data(associate_rq())
        event = conn.next_event()
        assert isinstance(event, AssociationRequested)
        values.append(event.request)
    assert values[0] == values[1]
    assert values[0] is not values[1]


def test_the_request_cache_is_bounded() -> None:
    """Requests over ``MAX_BODY`` bytes are not kept; a full cache starts again."""
    requests = RequestCache()
    for n in range(RequestCache.ENTRIES + 5):
        conn = Connection(requests=requests)
        conn.connection_made()
        conn.receive_data(associate_rq(calling=f"SCU{n}"))
        assert isinstance(conn.next_event(), AssociationRequested)
        assert 1 <= len(requests) <= RequestCache.ENTRIES
    assert len(requests) == 5
    many = [(n, GENERAL, (IMPLICIT,)) for n in range(1, 256, 2)]  # 128 contexts
    large = associate_rq(calling="LARGE", contexts=many)
    assert len(large) - 6 > RequestCache.MAX_BODY
    conn = Connection(requests=requests)
    conn.connection_made()
    conn.receive_data(large)
    assert isinstance(conn.next_event(), AssociationRequested)
    assert len(requests) == 5


def test_a_different_request_is_decoded_afresh() -> None:
    conn = Connection()
    conn.connection_made()
    conn.receive_data(associate_rq(calling="OTHER_SCU"))
    event = conn.next_event()
    assert isinstance(event, AssociationRequested)
    assert event.request.calling_ae_title == "OTHER_SCU"
