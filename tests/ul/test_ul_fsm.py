"""One test per cell of the acceptor's state table, generated from that same table."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pynetdicom.fsm import TRANSITION_TABLE as PYNETDICOM_TABLE

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
from rpi_async.ul.commands import CEchoRQ, CFindRSP
from rpi_async.ul.errors import LocalProtocolError
from rpi_async.ul.events import Event as Indication
from rpi_async.ul.fsm import (
    ACCEPTOR_STATES,
    ACTION_DESCRIPTIONS,
    EVENT_DESCRIPTIONS,
    NEXT_STATE,
    STATE_DESCRIPTIONS,
    TRANSITIONS,
    Action,
    Event,
    State,
)
from rpi_async.ul.items import PresentationContextAC
from rpi_async.ul.pdu import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AReleaseRP,
    AReleaseRQ,
    write_pdu,
)
from tests.ul.ul_peer import POLICY, associate_rq, c_echo_rq

RQ = associate_rq()
AC_PDU = write_pdu(
    AAssociateAC("A", "B", (PresentationContextAC(1, ContextResult.ACCEPTANCE, "1.2"),))
)
RJ_PDU = write_pdu(AAssociateRJ(1, 1, 1))
ECHO = c_echo_rq(3, 1)
GARBAGE = b"\x09\x00\x00\x00\x00\x04\x00\x00\x00\x00"


def drain(conn: Connection) -> list[Indication]:
    events: list[Indication] = []
    for _ in range(100):
        event = conn.next_event()
        if event is NEED_DATA:
            return events
        events.append(event)
        if isinstance(event, ConnectionClosed):
            return events
    raise AssertionError("no end to events")


def feed(conn: Connection, data: bytes) -> list[Indication]:
    conn.receive_data(data)
    return drain(conn)


# --- driving a connection into each acceptor state ---------------------------------------


def sta1() -> Connection:
    return Connection()


def sta2() -> Connection:
    conn = Connection()
    conn.connection_made()
    return conn


def sta3() -> Connection:
    conn = sta2()
    (event,) = feed(conn, RQ)
    assert isinstance(event, AssociationRequested)
    return conn


def sta6() -> Connection:
    conn = sta3()
    request = conn.request
    assert request is not None
    conn.respond(negotiate(request, POLICY).reply)
    return conn


def sta7() -> Connection:
    conn = sta6()
    conn.release_request()
    return conn


def sta8() -> Connection:
    conn = sta6()
    assert feed(conn, write_pdu(AReleaseRQ())) == [ReleaseRequested()]
    return conn


def sta10() -> Connection:
    conn = sta7()
    assert feed(conn, write_pdu(AReleaseRQ())) == [ReleaseRequested()]
    return conn


def sta12() -> Connection:
    conn = sta10()
    assert feed(conn, write_pdu(AReleaseRP())) == [ReleaseConfirmed()]
    return conn


def sta13() -> Connection:
    conn = sta6()
    conn.abort()
    return conn


SETUP: dict[State, Callable[[], Connection]] = {
    State.STA1: sta1,
    State.STA2: sta2,
    State.STA3: sta3,
    State.STA6: sta6,
    State.STA7: sta7,
    State.STA8: sta8,
    State.STA10: sta10,
    State.STA12: sta12,
    State.STA13: sta13,
}


# --- firing each event --------------------------------------------------------------------


def _accept(conn: Connection) -> bytes:
    request = conn.request
    if request is None:  # not in Sta3: any AC will do, the connection must refuse it
        return conn.accept(AAssociateAC("A", "B", ()))
    reply = negotiate(request, POLICY).reply
    assert isinstance(reply, AAssociateAC)
    return conn.accept(reply)


def _lost(conn: Connection) -> tuple[bytes, list[Indication]]:
    conn.connection_lost()
    return b"", drain(conn)


def _remote(data: bytes) -> Callable[[Connection], tuple[bytes, list[Indication]]]:
    def fire(conn: Connection) -> tuple[bytes, list[Indication]]:
        events = feed(conn, data)
        sent = b"".join(e.data_to_send for e in events if isinstance(e, ProtocolAborted))
        return sent, events

    return fire


def _local(
    call: Callable[[Connection], bytes | None],
) -> Callable[[Connection], tuple[bytes, list[Indication]]]:
    def fire(conn: Connection) -> tuple[bytes, list[Indication]]:
        return call(conn) or b"", []

    return fire


FIRE: dict[Event, Callable[[Connection], tuple[bytes, list[Indication]]]] = {
    Event.EVT3: _remote(AC_PDU),
    Event.EVT4: _remote(RJ_PDU),
    Event.EVT5: _local(lambda c: c.connection_made()),
    Event.EVT6: _remote(RQ),
    Event.EVT7: _local(_accept),
    Event.EVT8: _local(lambda c: c.reject(AAssociateRJ(1, 1, 1))),
    Event.EVT9: _local(lambda c: c.send_message(1, CFindRSP(1, "1.2", FindStatus.SUCCESS))),
    Event.EVT10: _remote(ECHO),
    Event.EVT11: _local(lambda c: c.release_request()),
    Event.EVT12: _remote(write_pdu(AReleaseRQ())),
    Event.EVT13: _remote(write_pdu(AReleaseRP())),
    Event.EVT14: _local(lambda c: c.release_response()),
    Event.EVT15: _local(lambda c: c.abort()),
    Event.EVT16: _remote(write_pdu(AAbort(AbortSource.SERVICE_USER, 0))),
    Event.EVT17: _lost,
    Event.EVT18: _local(lambda c: c.artim_expired()),
    Event.EVT19: _remote(GARBAGE),
}

SENDS: dict[Action, PduType] = {
    Action.AE_7: PduType.A_ASSOCIATE_AC,
    Action.AE_8: PduType.A_ASSOCIATE_RJ,
    Action.DT_1: PduType.P_DATA_TF,
    Action.AR_7: PduType.P_DATA_TF,
    Action.AR_1: PduType.A_RELEASE_RQ,
    Action.AR_4: PduType.A_RELEASE_RP,
    Action.AA_1: PduType.A_ABORT,
    Action.AA_7: PduType.A_ABORT,
    Action.AA_8: PduType.A_ABORT,
}
INDICATES: dict[Action, type] = {
    Action.AE_6: AssociationRequested,
    Action.DT_2: DimseMessage,
    Action.AR_6: DimseMessage,
    Action.AR_2: ReleaseRequested,
    Action.AR_8: ReleaseRequested,
    Action.AR_3: ReleaseConfirmed,
    Action.AR_10: ReleaseConfirmed,
    Action.AA_3: Aborted,
    Action.AA_4: ConnectionClosed,
    Action.AA_5: ConnectionClosed,
    Action.AR_5: ConnectionClosed,
    Action.AA_7: ProtocolAborted,
    Action.AA_8: ProtocolAborted,
}
STARTS_ARTIM = {Action.AE_5, Action.AE_8, Action.AR_4, Action.AA_1, Action.AA_8}
STOPS_ARTIM = {Action.AE_6, Action.AA_2, Action.AA_5, Action.AR_5}
CLOSES = {Action.AA_2, Action.AA_3, Action.AR_3}

CELLS = sorted(
    TRANSITIONS.items(), key=lambda kv: (int(kv[0][0].value[3:]), int(kv[0][1].value[3:]))
)


@pytest.mark.parametrize(
    ("cell", "action"), CELLS, ids=[f"{s.value}-{e.value}-{a.value}" for (s, e), a in CELLS]
)
def test_cell(cell: tuple[State, Event], action: Action) -> None:
    state, event = cell
    conn = SETUP[state]()
    assert conn.state is state
    conn.take_timer_request()
    sent, events = FIRE[event](conn)

    assert conn.last_transition == (state, event, action)
    assert conn.state is NEXT_STATE[action]
    if action in SENDS:
        assert sent[:1] == bytes([SENDS[action]])
    else:
        assert sent == b""
    expected = INDICATES.get(action)
    if action is Action.AA_1 and event is not Event.EVT15:
        expected = ProtocolAborted  # the provider refuses a PDU in Sta2
    kinds = [type(e) for e in events]
    if expected is None:
        assert kinds == [] or (kinds == [ConnectionClosed] and event is Event.EVT17)
    else:
        assert expected in kinds
    if action in (Action.AA_1, Action.AA_7, Action.AA_8) and event is not Event.EVT15:
        reason = sent[-1]
        assert sent[-2] == AbortSource.SERVICE_PROVIDER
        assert reason in (AbortReason.UNEXPECTED_PDU, AbortReason.UNRECOGNIZED_PDU)
    timer = conn.take_timer_request()
    if action in STARTS_ARTIM:
        assert timer is TimerRequest.START_ARTIM
    elif action in STOPS_ARTIM:
        assert timer is TimerRequest.STOP_ARTIM
    else:
        assert timer is None
    assert conn.artim_running is (conn.state in (State.STA2, State.STA13))
    assert conn.should_close is (action in CLOSES)
    if action is Action.AA_4:
        assert events[-1] == ConnectionClosed(aborted=True)
    if action is Action.DT_2 or action is Action.AR_6:
        assert events == [DimseMessage(3, CEchoRQ(1), None)]


LOCAL_EVENTS = (
    Event.EVT5,
    Event.EVT7,
    Event.EVT8,
    Event.EVT9,
    Event.EVT11,
    Event.EVT14,
    Event.EVT15,
)
FORBIDDEN = [
    (state, event)
    for state in ACCEPTOR_STATES
    for event in LOCAL_EVENTS
    if (state, event) not in TRANSITIONS
]


@pytest.mark.parametrize(
    ("state", "event"), FORBIDDEN, ids=[f"{s.value}-{e.value}" for s, e in FORBIDDEN]
)
def test_local_primitive_outside_the_table_is_refused(state: State, event: Event) -> None:
    conn = SETUP[state]()
    before = conn.last_transition
    with pytest.raises(LocalProtocolError):
        FIRE[event](conn)
    assert conn.state is state
    assert conn.last_transition == before


def test_table_matches_pynetdicom_for_every_acceptor_cell() -> None:
    theirs = {
        (State(sta), Event(evt)): Action(action)
        for (evt, sta), action in PYNETDICOM_TABLE.items()
        if State(sta) in ACCEPTOR_STATES and evt not in ("Evt1", "Evt2")
    }
    assert theirs == TRANSITIONS


def test_every_name_has_the_standard_description() -> None:
    assert set(STATE_DESCRIPTIONS) == set(State)
    assert set(EVENT_DESCRIPTIONS) == set(Event)
    assert set(ACTION_DESCRIPTIONS) == set(Action)
    assert {NEXT_STATE[a] for a in TRANSITIONS.values()} <= set(ACCEPTOR_STATES)
    assert State.STA13.description.startswith("Awaiting Transport Connection Close")
    assert Action.AA_8.value == "AA-8"
