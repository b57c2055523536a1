"""The DICOM Upper Layer state machine as data (PS3.8 §9.2, Tables 9-9 and 9-10).

Theory of operation
-------------------
States, events and actions keep the standard's names (``State.STA6`` is "Sta6",
``Action.AR_4`` is "AR-4"). ``TRANSITIONS`` is the part of Table 9-10 that an
association *acceptor* can meet: the states a requestor alone passes through (Sta4,
Sta5, Sta9, Sta11) and the events only a requestor causes (Evt1, Evt2) are left
out. A cell that is absent is an event the acceptor cannot accept in that state:
for a local primitive that is a ``LocalProtocolError``.

``NEXT_STATE`` gives each action's next state for an acceptor: AE-6 always goes to
Sta3 (the service provider defers every decision to the application, which rejects
through ``negotiate``), and AR-8 goes to Sta10, the acceptor's side of a release
collision.

The ARTIM timer runs exactly in Sta2 and Sta13: every action entering either state
starts it (AE-5, AE-8, AR-4, AA-1, AA-8) and every action leaving them stops it
(AE-6, AA-2, AA-5, AR-5), so whether it runs is derived from the state alone.

This module holds no logic; ``connection.py`` executes the actions.
"""

from __future__ import annotations

import enum


class State(enum.Enum):
    # Members are singletons: an identity hash is correct, and it is computed in C,
    # where Enum's own hashes the member name in Python (the table is looked up per PDU).
    __hash__ = object.__hash__

    STA1 = "Sta1"
    STA2 = "Sta2"
    STA3 = "Sta3"
    STA4 = "Sta4"
    STA5 = "Sta5"
    STA6 = "Sta6"
    STA7 = "Sta7"
    STA8 = "Sta8"
    STA9 = "Sta9"
    STA10 = "Sta10"
    STA11 = "Sta11"
    STA12 = "Sta12"
    STA13 = "Sta13"

    @property
    def description(self) -> str:
        return STATE_DESCRIPTIONS[self]


class Event(enum.Enum):
    # Members are singletons: an identity hash is correct, and it is computed in C,
    # where Enum's own hashes the member name in Python (the table is looked up per PDU).
    __hash__ = object.__hash__

    EVT1 = "Evt1"
    EVT2 = "Evt2"
    EVT3 = "Evt3"
    EVT4 = "Evt4"
    EVT5 = "Evt5"
    EVT6 = "Evt6"
    EVT7 = "Evt7"
    EVT8 = "Evt8"
    EVT9 = "Evt9"
    EVT10 = "Evt10"
    EVT11 = "Evt11"
    EVT12 = "Evt12"
    EVT13 = "Evt13"
    EVT14 = "Evt14"
    EVT15 = "Evt15"
    EVT16 = "Evt16"
    EVT17 = "Evt17"
    EVT18 = "Evt18"
    EVT19 = "Evt19"

    @property
    def description(self) -> str:
        return EVENT_DESCRIPTIONS[self]


class Action(enum.Enum):
    # Members are singletons: an identity hash is correct, and it is computed in C,
    # where Enum's own hashes the member name in Python (the table is looked up per PDU).
    __hash__ = object.__hash__

    AE_1 = "AE-1"
    AE_2 = "AE-2"
    AE_3 = "AE-3"
    AE_4 = "AE-4"
    AE_5 = "AE-5"
    AE_6 = "AE-6"
    AE_7 = "AE-7"
    AE_8 = "AE-8"
    DT_1 = "DT-1"
    DT_2 = "DT-2"
    AR_1 = "AR-1"
    AR_2 = "AR-2"
    AR_3 = "AR-3"
    AR_4 = "AR-4"
    AR_5 = "AR-5"
    AR_6 = "AR-6"
    AR_7 = "AR-7"
    AR_8 = "AR-8"
    AR_9 = "AR-9"
    AR_10 = "AR-10"
    AA_1 = "AA-1"
    AA_2 = "AA-2"
    AA_3 = "AA-3"
    AA_4 = "AA-4"
    AA_5 = "AA-5"
    AA_6 = "AA-6"
    AA_7 = "AA-7"
    AA_8 = "AA-8"

    @property
    def description(self) -> str:
        return ACTION_DESCRIPTIONS[self]


STATE_DESCRIPTIONS: dict[State, str] = {
    State.STA1: "Idle",
    State.STA2: "Transport connection open (Awaiting A-ASSOCIATE-RQ PDU)",
    State.STA3: "Awaiting local A-ASSOCIATE response primitive (from local user)",
    State.STA4: "Awaiting transport connection opening to complete (from local transport service)",
    State.STA5: "Awaiting A-ASSOCIATE-AC or A-ASSOCIATE-RJ PDU",
    State.STA6: "Association established and ready for data transfer",
    State.STA7: "Awaiting A-RELEASE-RP PDU",
    State.STA8: "Awaiting local A-RELEASE response primitive (from local user)",
    State.STA9: "Release collision requestor side; awaiting A-RELEASE response (from local user)",
    State.STA10: "Release collision acceptor side; awaiting A-RELEASE-RP PDU",
    State.STA11: "Release collision requestor side; awaiting A-RELEASE-RP PDU",
    State.STA12: "Release collision acceptor side; awaiting A-RELEASE response primitive",
    State.STA13: "Awaiting Transport Connection Close Indication (Association no longer exists)",
}

EVENT_DESCRIPTIONS: dict[Event, str] = {
    Event.EVT1: "A-ASSOCIATE Request (local user)",
    Event.EVT2: "Transport Connect Confirmation (local transport service)",
    Event.EVT3: "A-ASSOCIATE-AC PDU (received on transport connection)",
    Event.EVT4: "A-ASSOCIATE-RJ PDU (received on transport connection)",
    Event.EVT5: "Transport Connection Indication (local transport service)",
    Event.EVT6: "A-ASSOCIATE-RQ PDU (received on transport connection)",
    Event.EVT7: "A-ASSOCIATE response primitive (accept)",
    Event.EVT8: "A-ASSOCIATE response primitive (reject)",
    Event.EVT9: "P-DATA request primitive",
    Event.EVT10: "P-DATA-TF PDU",
    Event.EVT11: "A-RELEASE Request primitive",
    Event.EVT12: "A-RELEASE-RQ PDU (received on open transport connection)",
    Event.EVT13: "A-RELEASE-RP PDU (received on transport connection)",
    Event.EVT14: "A-RELEASE Response primitive",
    Event.EVT15: "A-ABORT Request primitive",
    Event.EVT16: "A-ABORT PDU (received on open transport connection)",
    Event.EVT17: "Transport connection closed indication (local transport service)",
    Event.EVT18: "ARTIM timer expired (Association reject/release timer)",
    Event.EVT19: "Unrecognized or invalid PDU received",
}

ACTION_DESCRIPTIONS: dict[Action, str] = {
    Action.AE_1: "Issue TRANSPORT CONNECT request primitive to local transport service",
    Action.AE_2: "Send A-ASSOCIATE-RQ-PDU",
    Action.AE_3: "Issue A-ASSOCIATE confirmation (accept) primitive",
    Action.AE_4: "Issue A-ASSOCIATE confirmation (reject) primitive and close transport",
    Action.AE_5: "Issue Transport connection response primitive; start ARTIM timer",
    Action.AE_6: "Stop ARTIM timer and if A-ASSOCIATE-RQ acceptable by service-provider: "
    "issue A-ASSOCIATE indication primitive; otherwise issue A-ASSOCIATE-RJ-PDU and start ARTIM",
    Action.AE_7: "Send A-ASSOCIATE-AC PDU",
    Action.AE_8: "Send A-ASSOCIATE-RJ PDU and start ARTIM timer",
    Action.DT_1: "Send P-DATA-TF PDU",
    Action.DT_2: "Send P-DATA indication primitive",
    Action.AR_1: "Send A-RELEASE-RQ PDU",
    Action.AR_2: "Issue A-RELEASE indication primitive",
    Action.AR_3: "Issue A-RELEASE confirmation primitive, and close transport connection",
    Action.AR_4: "Issue A-RELEASE-RP PDU and start ARTIM timer",
    Action.AR_5: "Stop ARTIM timer",
    Action.AR_6: "Issue P-DATA indication",
    Action.AR_7: "Issue P-DATA-TF PDU",
    Action.AR_8: "Issue A-RELEASE indication (release collision): "
    "if association-requestor, next state is Sta9, if not Sta10",
    Action.AR_9: "Send A-RELEASE-RP PDU",
    Action.AR_10: "Issue A-RELEASE confirmation primitive",
    Action.AA_1: "Send A-ABORT PDU (service-user source) and start (or restart) ARTIM timer",
    Action.AA_2: "Stop ARTIM timer if running. Close transport connection",
    Action.AA_3: "If (service-user initiated abort): issue A-ABORT indication and close "
    "transport connection; otherwise issue A-P-ABORT indication and close transport connection",
    Action.AA_4: "Issue A-P-ABORT indication primitive",
    Action.AA_5: "Stop ARTIM timer",
    Action.AA_6: "Ignore PDU",
    Action.AA_7: "Send A-ABORT PDU",
    Action.AA_8: "Send A-ABORT PDU (service-provider source), issue an A-P-ABORT indication, "
    "and start ARTIM timer",
}

ACCEPTOR_STATES: tuple[State, ...] = (
    State.STA1,
    State.STA2,
    State.STA3,
    State.STA6,
    State.STA7,
    State.STA8,
    State.STA10,
    State.STA12,
    State.STA13,
)

# States after an A-ASSOCIATE-RQ was accepted and before the association ends.
_LIVE = (State.STA6, State.STA7, State.STA8, State.STA10, State.STA12)
# Every state holding an association (or the request for one) that a PDU can break.
_ASSOCIATED = (State.STA3, *_LIVE)


def _cells(
    event: Event, states: tuple[State, ...], action: Action
) -> dict[tuple[State, Event], Action]:
    return {(state, event): action for state in states}


TRANSITIONS: dict[tuple[State, Event], Action] = {
    # Evt3/Evt4: A-ASSOCIATE-AC/RJ PDU, never valid towards an acceptor.
    (State.STA2, Event.EVT3): Action.AA_1,
    **_cells(Event.EVT3, _ASSOCIATED, Action.AA_8),
    (State.STA13, Event.EVT3): Action.AA_6,
    (State.STA2, Event.EVT4): Action.AA_1,
    **_cells(Event.EVT4, _ASSOCIATED, Action.AA_8),
    (State.STA13, Event.EVT4): Action.AA_6,
    # Evt5: transport connection indication.
    (State.STA1, Event.EVT5): Action.AE_5,
    # Evt6: A-ASSOCIATE-RQ PDU.
    (State.STA2, Event.EVT6): Action.AE_6,
    **_cells(Event.EVT6, _ASSOCIATED, Action.AA_8),
    (State.STA13, Event.EVT6): Action.AA_7,
    # Evt7/Evt8: local accept/reject.
    (State.STA3, Event.EVT7): Action.AE_7,
    (State.STA3, Event.EVT8): Action.AE_8,
    # Evt9: local P-DATA request.
    (State.STA6, Event.EVT9): Action.DT_1,
    (State.STA8, Event.EVT9): Action.AR_7,
    # Evt10: P-DATA-TF PDU.
    (State.STA2, Event.EVT10): Action.AA_1,
    (State.STA3, Event.EVT10): Action.AA_8,
    (State.STA6, Event.EVT10): Action.DT_2,
    (State.STA7, Event.EVT10): Action.AR_6,
    (State.STA8, Event.EVT10): Action.AA_8,
    (State.STA10, Event.EVT10): Action.AA_8,
    (State.STA12, Event.EVT10): Action.AA_8,
    (State.STA13, Event.EVT10): Action.AA_6,
    # Evt11: local A-RELEASE request.
    (State.STA6, Event.EVT11): Action.AR_1,
    # Evt12: A-RELEASE-RQ PDU.
    (State.STA2, Event.EVT12): Action.AA_1,
    (State.STA3, Event.EVT12): Action.AA_8,
    (State.STA6, Event.EVT12): Action.AR_2,
    (State.STA7, Event.EVT12): Action.AR_8,
    (State.STA8, Event.EVT12): Action.AA_8,
    (State.STA10, Event.EVT12): Action.AA_8,
    (State.STA12, Event.EVT12): Action.AA_8,
    (State.STA13, Event.EVT12): Action.AA_6,
    # Evt13: A-RELEASE-RP PDU.
    (State.STA2, Event.EVT13): Action.AA_1,
    (State.STA3, Event.EVT13): Action.AA_8,
    (State.STA6, Event.EVT13): Action.AA_8,
    (State.STA7, Event.EVT13): Action.AR_3,
    (State.STA8, Event.EVT13): Action.AA_8,
    (State.STA10, Event.EVT13): Action.AR_10,
    (State.STA12, Event.EVT13): Action.AA_8,
    (State.STA13, Event.EVT13): Action.AA_6,
    # Evt14: local A-RELEASE response.
    (State.STA8, Event.EVT14): Action.AR_4,
    (State.STA12, Event.EVT14): Action.AR_4,
    # Evt15: local A-ABORT request.
    **_cells(Event.EVT15, _ASSOCIATED, Action.AA_1),
    # Evt16: A-ABORT PDU.
    (State.STA2, Event.EVT16): Action.AA_2,
    **_cells(Event.EVT16, _ASSOCIATED, Action.AA_3),
    (State.STA13, Event.EVT16): Action.AA_2,
    # Evt17: transport connection closed.
    (State.STA2, Event.EVT17): Action.AA_5,
    **_cells(Event.EVT17, _ASSOCIATED, Action.AA_4),
    (State.STA13, Event.EVT17): Action.AR_5,
    # Evt18: ARTIM timer expired.
    (State.STA2, Event.EVT18): Action.AA_2,
    (State.STA13, Event.EVT18): Action.AA_2,
    # Evt19: unrecognised or invalid PDU.
    (State.STA2, Event.EVT19): Action.AA_1,
    **_cells(Event.EVT19, _ASSOCIATED, Action.AA_8),
    (State.STA13, Event.EVT19): Action.AA_7,
}

NEXT_STATE: dict[Action, State] = {
    Action.AE_5: State.STA2,
    Action.AE_6: State.STA3,
    Action.AE_7: State.STA6,
    Action.AE_8: State.STA13,
    Action.DT_1: State.STA6,
    Action.DT_2: State.STA6,
    Action.AR_1: State.STA7,
    Action.AR_2: State.STA8,
    Action.AR_3: State.STA1,
    Action.AR_4: State.STA13,
    Action.AR_5: State.STA1,
    Action.AR_6: State.STA7,
    Action.AR_7: State.STA8,
    Action.AR_8: State.STA10,
    Action.AR_10: State.STA12,
    Action.AA_1: State.STA13,
    Action.AA_2: State.STA1,
    Action.AA_3: State.STA1,
    Action.AA_4: State.STA1,
    Action.AA_5: State.STA1,
    Action.AA_6: State.STA13,
    Action.AA_7: State.STA13,
    Action.AA_8: State.STA13,
}

ARTIM_STATES = frozenset({State.STA2, State.STA13})
