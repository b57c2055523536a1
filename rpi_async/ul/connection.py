"""The acceptor side of one DICOM association, sans I/O (PS3.8 §9.2, in the manner of h11).

Theory of operation
-------------------
A ``Connection`` is driven by three kinds of input and never touches a socket, a
clock or a logger:

- the transport: ``connection_made()`` (Evt5), ``receive_data(bytes)`` (buffered),
  ``connection_lost()`` (Evt17) and ``artim_expired()`` (Evt18);
- ``next_event()``, which decodes the next buffered PDU, maps it to its state machine
  event (A-ASSOCIATE-RQ is Evt6, P-DATA-TF Evt10, ...; a PDU that fails to decode is
  Evt19), runs the action that ``fsm.TRANSITIONS`` names, and returns the indication
  it issued (``events.py``), or ``NEED_DATA``;
- the application's primitives: ``accept``/``reject`` (Evt7/Evt8), ``send_message``
  (Evt9), ``release_request`` (Evt11), ``release_response`` (Evt14) and ``abort``
  (Evt15). Each returns the bytes to write; one the table does not allow in the
  current state raises ``LocalProtocolError`` and changes nothing.

Everything else is read from the state after each call: ``should_close`` (an action
closed the transport: AA-2, AA-3, AR-3), ``take_timer_request()`` (the ARTIM starts and
stops the actions asked for; the adapter owns the clock), ``is_established``.

Protocol errors never raise out of ``next_event``. A malformed PDU, a PDU over the
receive limit (refused from its header alone), or a P-DATA whose PDVs cannot be
reassembled (zero-length PDV item, data set without its command, context not accepted,
undecodable command set) is Evt19: the action (AA-1 in Sta2, AA-8 in an association,
AA-7 in Sta13) sends an A-ABORT with source service-provider and the error's reason,
reported as ``ProtocolAborted`` with the bytes to write; the rest of the input is
discarded, since a byte stream that failed to parse cannot be resynchronised. A
well-formed PDU that the state forbids (a P-DATA in Sta2, a second A-ASSOCIATE-RQ in
Sta6) gets the same treatment with reason unexpected-PDU.

PS3.8 labels AA-1 "service-user source": true when the local user aborts (Evt15), but
in Sta2 an unexpected or invalid PDU is refused by the provider before any user is
involved, so that abort states source service-provider and a reason, as AA-8 does.

The receive limit is the negotiated Maximum Length Received for P-DATA-TF once our
A-ASSOCIATE-AC has gone out, and ``max_associate_pdu_length`` for every other PDU.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping

from rpi_async.ul.codes import AbortReason, AbortSource
from rpi_async.ul.commands import DimseCommand
from rpi_async.ul.dimse import DEFAULT_MAX_MESSAGE_LENGTH, MessageAssembler, encode_message
from rpi_async.ul.errors import LocalProtocolError, RemoteProtocolError
from rpi_async.ul.events import (
    NEED_DATA,
    Aborted,
    AssociationRequested,
    ConnectionClosed,
    Event,
    NeedData,
    ProtocolAborted,
    ReleaseConfirmed,
    ReleaseRequested,
)
from rpi_async.ul.fsm import ARTIM_STATES, NEXT_STATE, TRANSITIONS, Action, State
from rpi_async.ul.fsm import Event as FsmEvent
from rpi_async.ul.negotiation import AcceptedContext, accepted_contexts
from rpi_async.ul.pdu import (
    AAbort,
    AAssociateAC,
    AAssociateRJ,
    AAssociateRQ,
    AReleaseRP,
    AReleaseRQ,
    PDataTF,
    Pdu,
    RequestCache,
    read_pdu,
    write_pdu,
)

DEFAULT_MAX_ASSOCIATE_PDU_LENGTH = 1 << 18
# PS3.8 Annex D.1 makes the maximum length sub-item mandatory; a peer that omits it
# gets PDUs no larger than the historical common default rather than unbounded ones.
ASSUMED_PEER_MAX_PDU_LENGTH = 16384
# When our own A-ASSOCIATE-AC announces 0 ("no maximum"), memory is still bounded.
UNBOUNDED_RECEIVE_CAP = 1 << 24


class TimerRequest(enum.Enum):
    """What the adapter must do with its ARTIM timer (PS3.8 §9.1.5)."""

    __hash__ = object.__hash__

    START_ARTIM = "start ARTIM"
    STOP_ARTIM = "stop ARTIM"


class _Transport(enum.Enum):
    __hash__ = object.__hash__

    NOT_OPEN = "not open"
    OPEN = "open"
    LOST = "lost"


_PDU_EVENTS: dict[type, FsmEvent] = {
    AAssociateAC: FsmEvent.EVT3,
    AAssociateRJ: FsmEvent.EVT4,
    AAssociateRQ: FsmEvent.EVT6,
    PDataTF: FsmEvent.EVT10,
    AReleaseRQ: FsmEvent.EVT12,
    AReleaseRP: FsmEvent.EVT13,
    AAbort: FsmEvent.EVT16,
}
_STARTS_ARTIM = frozenset({Action.AE_5, Action.AE_8, Action.AR_4, Action.AA_1, Action.AA_8})
_STOPS_ARTIM = frozenset({Action.AE_6, Action.AA_2, Action.AA_5, Action.AR_5})


def _timer_effect(action: Action) -> TimerRequest | None:
    if action in _STARTS_ARTIM:
        return TimerRequest.START_ARTIM
    if action in _STOPS_ARTIM:
        return TimerRequest.STOP_ARTIM
    return None


# The table with each cell's consequences resolved once: one lookup per transition.
_CELLS: dict[tuple[State, FsmEvent], tuple[Action, State, TimerRequest | None]] = {
    cell: (action, NEXT_STATE[action], _timer_effect(action))
    for cell, action in TRANSITIONS.items()
}
_ABORTS = frozenset({Action.AA_1, Action.AA_7, Action.AA_8})
_RELEASE_RQ = write_pdu(AReleaseRQ())
_RELEASE_RP = write_pdu(AReleaseRP())


# (rq, ac, encoded ac, accepted contexts) by (id(rq), id(ac)): an application that answers
# the same (shared, frozen) request with the same reply gets its encoding and context
# table once. The entry holds rq and ac, so their ids cannot be reused while it exists.
_ACCEPTANCES: dict[
    tuple[int, int], tuple[AAssociateRQ, AAssociateAC, bytes, Mapping[int, AcceptedContext]]
] = {}
_ACCEPTANCE_ENTRIES = 256


def _acceptance(rq: AAssociateRQ, ac: AAssociateAC) -> tuple[bytes, Mapping[int, AcceptedContext]]:
    """``write_pdu(ac)`` and ``accepted_contexts(rq, ac)``, memoized; LocalProtocolError
    if ``ac`` answers a context ``rq`` did not propose."""
    key = (id(rq), id(ac))
    entry = _ACCEPTANCES.get(key)
    if entry is None or entry[0] is not rq or entry[1] is not ac:
        proposed = {cx.context_id for cx in rq.presentation_contexts}
        unknown = [
            cx.context_id for cx in ac.presentation_contexts if cx.context_id not in proposed
        ]
        if unknown:
            raise LocalProtocolError(f"A-ASSOCIATE-AC answers contexts never proposed: {unknown}")
        entry = (rq, ac, write_pdu(ac), accepted_contexts(rq, ac))
        if len(_ACCEPTANCES) >= _ACCEPTANCE_ENTRIES:
            _ACCEPTANCES.clear()
        _ACCEPTANCES[key] = entry
    return entry[2], entry[3]


class Connection:
    """One transport connection on which we are the association acceptor."""

    def __init__(
        self,
        *,
        max_associate_pdu_length: int = DEFAULT_MAX_ASSOCIATE_PDU_LENGTH,
        max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH,
        requests: RequestCache | None = None,
    ) -> None:
        self._state = State.STA1
        self._requests = requests  # decoded A-ASSOCIATE-RQs, shared by the acceptor's connections
        self._transport = _Transport.NOT_OPEN
        self._buffer = bytearray()
        self._discarding = False
        self._events: deque[Event] = deque()
        self._closed: ConnectionClosed | None = None
        self._timer_request: TimerRequest | None = None
        self._last: tuple[State, FsmEvent, Action] | None = None
        self._max_associate = max_associate_pdu_length
        self._max_message = max_message_length
        self._pdata_limit = max_associate_pdu_length
        self._request: AAssociateRQ | None = None
        self._contexts: Mapping[int, AcceptedContext] = {}
        self._peer_max = ASSUMED_PEER_MAX_PDU_LENGTH
        self._assembler = MessageAssembler(self._contexts, max_message_length)
        self._pdus = 0

    # --- state, derived ---------------------------------------------------------------

    @property
    def state(self) -> State:
        return self._state

    @property
    def is_established(self) -> bool:
        """Sta6: the association is up and neither side has asked to release it."""
        return self._state is State.STA6

    @property
    def can_send(self) -> bool:
        """Whether ``send_message`` is allowed now (Sta6, or Sta8 before our release reply)."""
        return (self._state, FsmEvent.EVT9) in TRANSITIONS

    @property
    def artim_running(self) -> bool:
        return self._state in ARTIM_STATES

    @property
    def should_close(self) -> bool:
        """An action closed the transport connection: the adapter must close it now."""
        return self._state is State.STA1 and self._transport is _Transport.OPEN

    @property
    def last_transition(self) -> tuple[State, FsmEvent, Action] | None:
        """The latest ``(state, event, action)`` cell executed, for tracing."""
        return self._last

    @property
    def request(self) -> AAssociateRQ | None:
        return self._request

    @property
    def accepted_contexts(self) -> Mapping[int, AcceptedContext]:
        return self._contexts

    @property
    def peer_max_pdu_length(self) -> int:
        """The peer's Maximum Length Received that outgoing P-DATA honours (0: none)."""
        return self._peer_max

    @property
    def buffered_bytes(self) -> int:
        """Received bytes not yet decoded (for the adapter's flow control)."""
        return len(self._buffer)

    @property
    def held_bytes(self) -> int:
        """Received bytes held: undecoded, plus the DIMSE message being reassembled."""
        return len(self._buffer) + self._assembler.size

    @property
    def pdus_received(self) -> int:
        """Complete PDUs decoded so far (an adapter's completion deadline restarts)."""
        return self._pdus

    @property
    def assembling(self) -> bool:
        """A DIMSE message has begun and is not complete yet."""
        return self._assembler.in_progress

    def take_timer_request(self) -> TimerRequest | None:
        """The last ARTIM start/stop asked for since the previous call, if any."""
        request, self._timer_request = self._timer_request, None
        return request

    # --- transport ----------------------------------------------------------------------

    def connection_made(self) -> None:
        """Evt5: a peer connected. Starts ARTIM (AE-5)."""
        self._local(FsmEvent.EVT5, "open a connection")
        self._transport = _Transport.OPEN

    def connection_lost(self) -> None:
        """Evt17, once ``next_event`` has handled the PDUs already buffered."""
        self._transport = _Transport.LOST

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Buffer bytes from the peer; ``next_event`` decodes them."""
        if self._transport is _Transport.NOT_OPEN:
            raise LocalProtocolError("receive_data before connection_made")
        if self._discarding or self._transport is _Transport.LOST or self._state is State.STA1:
            return  # nothing more will be decoded: do not let it pile up
        self._buffer += data

    def artim_expired(self) -> bytes:
        """Evt18: AA-2 closes the connection (nothing to send). A stale timer is ignored."""
        if self._state in ARTIM_STATES:
            self._transition(FsmEvent.EVT18)
        return b""

    # --- indications --------------------------------------------------------------------

    def next_event(self) -> Event | NeedData:
        """The next indication, ``NEED_DATA``, or ``ConnectionClosed`` (then always)."""
        while True:
            if self._events:
                return self._events.popleft()
            if self._closed is not None:
                return self._closed
            if not self._advance():
                return NEED_DATA

    def _advance(self) -> bool:
        """Handle one more input (a PDU or the end of the transport), if there is one."""
        if self._buffer and not self._discarding and self._state is not State.STA1:
            try:
                parsed = read_pdu(
                    self._buffer,
                    self._pdata_limit,
                    max_associate_len=self._max_associate,
                    requests=self._requests,
                )
            except RemoteProtocolError as exc:
                self._invalid_pdu(exc)
                return True
            if parsed is not None:
                pdu, used = parsed
                del self._buffer[:used]
                self._received(pdu)
                return True
        if self._transport is _Transport.LOST:
            aborted = False
            if self._state is not State.STA1:
                aborted = self._transition(FsmEvent.EVT17) is Action.AA_4
            self._buffer = bytearray()
            self._closed = ConnectionClosed(aborted)
            return True
        return False

    def _received(self, pdu: Pdu) -> None:
        self._pdus += 1
        event = _PDU_EVENTS[type(pdu)]
        action = TRANSITIONS[(self._state, event)]
        if action in _ABORTS:
            name = type(pdu).__name__
            detail = f"unexpected {name} in {self._state.value} ({self._state.description})"
            self._protocol_abort(event, AbortReason.UNEXPECTED_PDU, detail)
        elif action is Action.DT_2 or action is Action.AR_6:
            assert isinstance(pdu, PDataTF)
            try:
                messages = self._assembler.add(pdu.pdvs)
            except RemoteProtocolError as exc:
                self._invalid_pdu(exc)
                return
            self._transition(event)
            self._events.extend(messages)
        elif action is Action.AE_6:
            assert isinstance(pdu, AAssociateRQ)
            self._request = pdu
            self._transition(event)
            self._events.append(AssociationRequested(pdu))
        elif action is Action.AR_2 or action is Action.AR_8:
            self._transition(event)
            self._events.append(ReleaseRequested())
        elif action is Action.AR_3 or action is Action.AR_10:
            self._transition(event)
            self._events.append(ReleaseConfirmed())
        elif action is Action.AA_3:
            assert isinstance(pdu, AAbort)
            self._transition(event)
            self._events.append(Aborted(pdu.source, pdu.reason))
        else:  # AA-2 (close) or AA-6 (ignore the PDU)
            self._transition(event)

    def _invalid_pdu(self, exc: RemoteProtocolError) -> None:
        """Evt19; the stream cannot be trusted past this point, so stop reading it."""
        self._discarding = True
        self._buffer = bytearray()
        self._protocol_abort(FsmEvent.EVT19, exc.reason, str(exc))

    def _protocol_abort(self, event: FsmEvent, reason: AbortReason, detail: str) -> None:
        data = write_pdu(AAbort(AbortSource.SERVICE_PROVIDER, reason))
        self._transition(event)
        self._events.append(ProtocolAborted(reason, detail, data))

    # --- primitives from the application --------------------------------------------------

    def accept(self, ac: AAssociateAC) -> bytes:
        """Evt7 (AE-7): send ``ac``; the association is established."""
        self._check(FsmEvent.EVT7, "accept an association")
        rq = self._request
        assert rq is not None  # Sta3 is only entered through AE-6
        data, self._contexts = _acceptance(rq, ac)
        ours = ac.user_information.max_length
        self._pdata_limit = ours if ours else UNBOUNDED_RECEIVE_CAP
        theirs = rq.user_information.max_length
        self._peer_max = ASSUMED_PEER_MAX_PDU_LENGTH if theirs is None else theirs
        self._assembler = MessageAssembler(self._contexts, self._max_message)
        self._transition(FsmEvent.EVT7)
        return data

    def reject(self, rj: AAssociateRJ) -> bytes:
        """Evt8 (AE-8): send ``rj`` and start ARTIM, waiting for the peer to close."""
        self._check(FsmEvent.EVT8, "reject an association")
        data = write_pdu(rj)
        self._transition(FsmEvent.EVT8)
        return data

    def respond(self, reply: AAssociateAC | AAssociateRJ) -> bytes:
        """``accept`` or ``reject``, whichever ``reply`` is (a ``Negotiation.reply``)."""
        if isinstance(reply, AAssociateAC):
            return self.accept(reply)
        return self.reject(reply)

    def send_message(
        self, context_id: int, command: DimseCommand, dataset: bytes | None = None
    ) -> bytes:
        """Evt9 (DT-1, or AR-7 in Sta8): one DIMSE message as P-DATA-TF PDUs."""
        self._check(FsmEvent.EVT9, "send a DIMSE message")
        if context_id not in self._contexts:
            raise LocalProtocolError(f"presentation context {context_id} was not accepted")
        data = encode_message(context_id, command, dataset, self._peer_max)
        self._transition(FsmEvent.EVT9)
        return data

    def release_request(self) -> bytes:
        """Evt11 (AR-1): ask the peer to release the association."""
        self._check(FsmEvent.EVT11, "request a release")
        self._transition(FsmEvent.EVT11)
        return _RELEASE_RQ

    def release_response(self) -> bytes:
        """Evt14 (AR-4): agree to the peer's release request; ARTIM starts."""
        self._check(FsmEvent.EVT14, "answer a release request")
        self._transition(FsmEvent.EVT14)
        return _RELEASE_RP

    def abort(
        self,
        source: AbortSource = AbortSource.SERVICE_USER,
        reason: AbortReason = AbortReason.NOT_SPECIFIED,
    ) -> bytes:
        """Evt15 (AA-1): abort the association; ARTIM starts."""
        self._check(FsmEvent.EVT15, "abort")
        data = write_pdu(AAbort(source, reason))
        self._transition(FsmEvent.EVT15)
        return data

    # --- the table ------------------------------------------------------------------------

    def _check(self, event: FsmEvent, what: str) -> None:
        if (self._state, event) not in _CELLS:
            raise LocalProtocolError(
                f"cannot {what} in {self._state.value} ({self._state.description})"
            )

    def _local(self, event: FsmEvent, what: str) -> None:
        self._check(event, what)
        self._transition(event)

    def _transition(self, event: FsmEvent) -> Action:
        state = self._state
        action, self._state, timer = _CELLS[(state, event)]
        self._last = (state, event, action)
        if timer is not None:
            self._timer_request = timer
        return action
