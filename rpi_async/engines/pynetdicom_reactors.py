"""pynetdicom's two reactors, woken by what they wait for instead of polling.

pynetdicom runs each association on two threads. Its DUL reactor (connection in,
primitives out) sleeps 1 ms after every pass that found nothing to do; its association
reactor sleeps 1 ms before every pass. With ``pynetdicom_workers`` associations open that
is two thousand wake-ups a second per association, each taking the GIL from whichever
thread is doing real work, and every step of an association (request, accept, C-FIND,
answer, release) waits up to a millisecond for the next pass of the other thread. On
two cores that polling, not the work, bounded the engine (RESULTS.md §6).

This module keeps pynetdicom's loops pass for pass (``_dul_pass`` and
``EventAssociation._run_reactor`` are its ``DULServiceProvider.run_reactor`` and
``Association._run_reactor``, 3.0) and replaces only the sleeps with waits:

- the DUL waits in ``poll`` on the connection and on a doorbell pipe, which is rung when
  another thread queues a primitive or an event for it, or stops it;
- the association reactor waits on a ``threading.Event``, set when the DUL queues a DIMSE
  message or an ACSE primitive for it, reaches Sta1, or ends;
- both wake at least every ``TIMER_TICK`` for their timers (ARTIM, the network idle
  timeout, ``GuardedSocket``'s completion deadlines), which count in seconds.

Around those loops: the DUL runs on a thread of the engine's DUL pool (``start``, given
as ``assoc.dul_runner``) rather than on a thread started for each association, and
``Association.__init__`` builds an ``EventDUL`` and an ``EventDIMSE`` directly
(``install``). ``EventDIMSE`` takes the requests ``GuardedSocket`` has decoded already;
``EncodedPData`` carries responses that ``ul.dimse`` has encoded.

``tests/engines/test_pynetdicom_reactors.py`` checks that pynetdicom's loops are still the
ones copied here: a pynetdicom release that changes them fails it until this module is
reviewed against the new code.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import ssl
import struct
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from io import BytesIO
from typing import Any, cast

import pynetdicom.association
from pynetdicom import evt
from pynetdicom._globals import MODE_ACCEPTOR
from pynetdicom.association import Association
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.dimse_primitives import C_CANCEL, C_ECHO, C_FIND
from pynetdicom.dul import DULServiceProvider
from pynetdicom.fsm import StateMachine
from pynetdicom.pdu import A_ABORT_RQ
from pynetdicom.pdu_primitives import P_DATA
from pynetdicom.timer import Timer
from pynetdicom.transport import AssociationSocket
from pynetdicom.utils import make_target

from rpi_async.engines.pynetdicom_transport import GuardedSocket
from rpi_async.ul.commands import CCancelRQ, CEchoRQ, CFindRQ
from rpi_async.ul.events import DimseMessage

log = logging.getLogger("rpi_async.ul")

TIMER_TICK = 0.05  # s: the longest wait, so timers are checked at least this often
HELD_RECHECK = 0.001  # s: bytes held back until the association is established
MAX_CANCELS_KEPT = 10  # as pynetdicom's DIMSE provider
_IDLE_STATE = "Sta1"
_DATA_STATE = "Sta6"
_PDU_HEADER = struct.Struct(">BxI")
_PDV_LENGTH = struct.Struct(">I")


class _RingingQueue(queue.Queue[Any]):
    """A queue that calls ``ring`` (without blocking) on every put."""

    def __init__(self, ring: Callable[[], None]) -> None:
        super().__init__()
        self._ring = ring

    def _put(self, item: Any) -> None:
        super()._put(item)
        self._ring()


class EncodedPData(P_DATA):
    """A P-DATA request whose P-DATA-TF PDU is already encoded (``ul.dimse``): in Sta6
    ``EventDUL`` sends its bytes as they are; any other DUL (or state) reads its
    presentation data values as pynetdicom's own P-DATA's."""

    def __init__(self, pdu: bytes) -> None:
        super().__init__()
        self.pdu = pdu

    @property
    def presentation_data_value_list(self) -> list[tuple[int, bytes]]:
        pdvs: list[tuple[int, bytes]] = []
        offset, end = _PDU_HEADER.size, len(self.pdu)
        while offset < end:
            (length,) = _PDV_LENGTH.unpack_from(self.pdu, offset)
            item = cast(
                tuple[int, bytes],
                [self.pdu[offset + 4], self.pdu[offset + 5 : offset + 4 + length]],
            )
            pdvs.append(item)
            offset += 4 + length
        return pdvs

    @presentation_data_value_list.setter
    def presentation_data_value_list(self, value: list[tuple[int, bytes]]) -> None:
        if value:
            raise AttributeError("an EncodedPData carries its PDU's bytes")


def send_encoded(assoc: Association, pdus: bytes) -> None:
    """Queue ``pdus`` (P-DATA-TF PDUs back to back) for the association's DUL, one
    request per PDU, so that each stays within the peer's maximum length."""
    dul = assoc.dul
    offset, end = 0, len(pdus)
    while offset < end:
        length = 6 + _PDU_HEADER.unpack_from(pdus, offset)[1]
        dul.send_pdu(EncodedPData(pdus[offset : offset + length]))
        offset += length


class EventDUL(DULServiceProvider):
    """pynetdicom's DUL, waiting for its connection or its doorbell instead of sleeping."""

    def __init__(self, assoc: Association) -> None:
        """``DULServiceProvider.__init__``, with queues that wake the reactor waiting
        for them: this DUL's own (``ring``) and the association's (``user_wakeup``)."""
        self._assoc = assoc
        self.socket: AssociationSocket | None = None
        self._bell_read, self._bell_write = os.pipe()
        os.set_blocking(self._bell_read, False)
        os.set_blocking(self._bell_write, False)
        self._bell_lock = threading.Lock()  # the pipe is closed under it: no write after
        self._bell_open = True
        self.user_wakeup = threading.Event()  # the association reactor waits on it
        self.user_wakeup.set()  # its first pass runs at once
        self.idle_reached = threading.Event()  # set on reaching Sta1, and when ending
        self.event_queue = _RingingQueue(self.ring)
        self.to_provider_queue = _RingingQueue(self.ring)
        self.to_user_queue = _RingingQueue(self.user_wakeup.set)
        self._recv_pdu: queue.Queue[Any] = queue.Queue()
        self._idle_timer = Timer(60)
        self.artim_timer = Timer(30)
        self.state_machine = StateMachine(self)
        self._run_loop_delay = TIMER_TICK
        threading.Thread.__init__(self, target=make_target(self.run_reactor))
        self.daemon = False
        self._kill_thread = False
        self._reactor_ident: int | None = None  # the thread running the reactor
        self._pooled = False
        self._finished = threading.Event()

    def _process_recv_primitive(self) -> bool:
        """pynetdicom's, but an ``EncodedPData`` in Sta6 (data transfer) is sent as it is:
        Sta6 + Evt9 is DT-1, send the P-DATA-TF and stay in Sta6."""
        try:
            primitive = self.to_provider_queue.queue[0]
        except IndexError:
            return False
        if isinstance(primitive, EncodedPData) and self.state_machine.current_state == _DATA_STATE:
            self.to_provider_queue.get(False)
            cast(Any, self.socket).send(primitive.pdu)
            return True
        return bool(super()._process_recv_primitive())

    def ring(self) -> None:
        """Wake the reactor (from another thread: its own puts need no wake-up)."""
        if threading.get_ident() == self._reactor_ident:
            return
        with self._bell_lock:
            if self._bell_open:
                with contextlib.suppress(BlockingIOError):
                    os.write(self._bell_write, b"\0")

    def kill_dul(self) -> None:
        self._kill_thread = True
        self.ring()

    def stop_dul(self) -> bool:
        """As pynetdicom's: stop the reactor if in Sta1, waiting for its thread to end
        by joining it rather than in 1 ms naps."""
        if self.state_machine.current_state != _IDLE_STATE:
            return False
        self._kill_thread = True
        self.ring()
        if self._reactor_ident not in (None, threading.get_ident()):
            self.join()
        return True

    # A DUL runs on a thread of the engine's DUL pool (``start``), not a thread of its own
    # started per association: pynetdicom calls these Thread methods on it.

    def start(self) -> None:
        """On a thread of ``assoc.dul_runner`` when the engine gave one; else as a Thread."""
        runner: Executor | None = getattr(self.assoc, "dul_runner", None)
        if runner is None:
            super().start()
            return
        self._pooled = True
        runner.submit(self._run_pooled)

    def is_alive(self) -> bool:
        if self._pooled:
            return not self._finished.is_set()
        return super().is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._pooled:
            self._finished.wait(timeout)
        else:
            super().join(timeout)

    def _run_pooled(self) -> None:
        try:
            self.run_reactor()
        except Exception as exc:  # as a Thread's excepthook would, without the traceback
            log.warning("pynetdicom's DUL failed (%s)", type(exc).__name__)
            log.debug("pynetdicom's DUL failed", exc_info=True)
        finally:
            self._finished.set()

    def run_reactor(self) -> None:
        self._reactor_ident = threading.get_ident()
        try:
            self._reactor()
        finally:
            with self._bell_lock:
                self._bell_open = False
                os.close(self._bell_read)
                os.close(self._bell_write)
            self.idle_reached.set()
            self.user_wakeup.set()

    def _reactor(self) -> None:
        """``DULServiceProvider.run_reactor`` with ``_wait`` for its sleep."""
        self._idle_timer.start()
        idle = False
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
                idle = True
            if idle:
                self._wait()
            if self._kill_thread:
                break
            if not self._dul_pass():
                return
            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                idle = True
                continue
            self.state_machine.do_action(event)
            idle = False
            if self.state_machine.current_state == _IDLE_STATE:
                self.idle_reached.set()
                self.user_wakeup.set()

    def _dul_pass(self) -> bool:
        """One pass of pynetdicom's reactor up to its event queue: the ARTIM timer, then a
        primitive to send or a PDU received. False when it failed and the DUL must end."""
        if self.artim_timer.expired:
            self.event_queue.put("Evt18")
        try:
            if self._process_recv_primitive():
                pass
            elif self._is_transport_event():
                self._idle_timer.restart()
        except Exception as exc:
            # As pynetdicom: bypass the state machine, send an A-ABORT and end.
            log.warning("pynetdicom's DUL failed (%s): association aborted", type(exc).__name__)
            log.debug("pynetdicom's DUL failed", exc_info=True)
            abort_pdu = A_ABORT_RQ()
            abort_pdu.source = 0x02
            abort_pdu.reason_diagnostic = 0x00
            with contextlib.suppress(Exception):
                cast(Any, self.socket).send(abort_pdu.encode())
            self.assoc.is_aborted = True
            self.assoc.is_established = False
            self.assoc._kill = True
            self._kill_thread = True
            return False
        return True

    def _wait(self) -> None:
        """Until the peer sends, another thread rings, or ``TIMER_TICK`` has passed."""
        if not self.to_provider_queue.empty():
            return
        timeout = TIMER_TICK
        poller = select.poll()
        poller.register(self._bell_read, select.POLLIN)
        sock = self.socket
        if isinstance(sock, GuardedSocket):
            if sock.has_complete_pdu:
                return
            if sock.holding_back:
                timeout = HELD_RECHECK  # a C-FIND sent before our A-ASSOCIATE-AC went out
            raw = sock.socket
            if raw is not None and not sock.peer_closed:
                if isinstance(raw, ssl.SSLSocket) and raw.pending():
                    return
                with contextlib.suppress(OSError, ValueError):
                    poller.register(raw.fileno(), select.POLLIN)
        ready = poller.poll(timeout * 1000)
        if any(fd == self._bell_read for fd, _ in ready):
            with contextlib.suppress(BlockingIOError), self._bell_lock:
                if self._bell_open:
                    os.read(self._bell_read, 4096)


class EventDIMSE(DIMSEServiceProvider):
    """pynetdicom's DIMSE provider, given the messages ``GuardedSocket`` has already
    reassembled and decoded (``ul.dimse``) instead of decoding every P-DATA again with
    pydicom. As pynetdicom's: a C-CANCEL is kept aside for ``is_cancelled`` (ten at most),
    other requests are queued for the association reactor, and a message its primitive
    refuses ends the association (Evt19)."""

    on_cancel: Callable[[], None] | None = None

    def receive_primitive(self, primitive: P_DATA) -> None:
        sock = self.assoc.dul.socket
        if not isinstance(sock, GuardedSocket):
            super().receive_primitive(primitive)
            return
        for message in sock.take_completed():
            try:
                self._deliver(message)
            except (TypeError, ValueError):
                log.info("DIMSE message pynetdicom refuses: association aborted")
                self.dul.event_queue.put("Evt19")
                return

    def _deliver(self, message: DimseMessage) -> None:
        command = message.command
        if isinstance(command, CCancelRQ):
            responded_to = command.message_id_being_responded_to
            if len(self.cancel_req) < MAX_CANCELS_KEPT:
                cancel = C_CANCEL()
                cancel.MessageIDBeingRespondedTo = responded_to
                self.cancel_req[responded_to] = cancel
            if self.on_cancel is not None:
                self.on_cancel()
            return
        request: C_FIND | C_ECHO
        if isinstance(command, CFindRQ):
            request = C_FIND()
            request.MessageID = command.message_id
            request.AffectedSOPClassUID = command.affected_sop_class_uid or None
            request.Priority = command.priority
            if message.dataset is not None:
                request.Identifier = BytesIO(message.dataset)
        elif isinstance(command, CEchoRQ):
            request = C_ECHO()
            request.MessageID = command.message_id
            request.AffectedSOPClassUID = command.affected_sop_class_uid
        else:
            return  # GuardedSocket admits no other command
        request._context_id = message.context_id
        self.msg_queue.put((message.context_id, request))


class EventAssociation(Association):
    """pynetdicom's acceptor association, its reactor waiting on an event for the DUL's
    messages instead of sleeping 1 ms before every pass."""

    dul: EventDUL

    def __init__(self, ae: Any, mode: str = MODE_ACCEPTOR) -> None:
        super().__init__(ae, mode)  # its DUL is an EventDUL (``install``)
        if not isinstance(self.dul, EventDUL):  # not installed: replaced, timers re-set
            self.dul = EventDUL(self)
            self.acse_timeout = self.ae.acse_timeout
            self.network_timeout = self.ae.network_timeout
        self._wakeup = self.dul.user_wakeup
        if not isinstance(self.dimse, EventDIMSE):
            self.dimse = EventDIMSE(self)
        self.dimse.msg_queue = _RingingQueue(self._wakeup.set)

    def kill(self) -> None:
        """As pynetdicom's, waiting for the DUL's Sta1 on an event, not in 10 ms naps."""
        self._reactor_checkpoint.set()
        self._kill = True
        self.is_established = False
        self._is_paused = True
        self._wakeup.set()
        dul = self.dul
        while dul.is_alive() and not dul.stop_dul():
            dul.idle_reached.wait(TIMER_TICK)
            dul.idle_reached.clear()

    def _run_reactor(self) -> None:
        """``Association._run_reactor`` with a wait on ``_wakeup`` for its sleep."""
        self._is_paused = False
        wakeup = self._wakeup
        while not self._kill:
            wakeup.wait(TIMER_TICK)
            wakeup.clear()
            # pynetdicom's pause point for its send_*() methods, kept
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self._is_paused = False

            context_id, msg = self.dimse.get_msg(block=False)
            if msg:
                self._serve_request(msg, cast(int, context_id))
                wakeup.set()  # another message may have arrived meanwhile: look again

            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return

            if self.acse.is_aborted():
                self.dul.receive_pdu(wait=False)  # so that EVT_ACSE_RECV fires
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return

            if not self.dul.is_alive():
                self.kill()
                return

            if self.dul.idle_timer_expired():
                if self.network_timeout_response == "A-RELEASE":
                    self._is_paused = True
                    self._reactor_checkpoint.wait()
                    self.release()
                    self._is_paused = False
                else:
                    self.abort()
                self.kill()
                return


def _dul_for(assoc: Association) -> DULServiceProvider:
    """The DUL ``Association.__init__`` creates: an ``EventDUL`` for an
    ``EventAssociation``, pynetdicom's own for any other association."""
    if isinstance(assoc, EventAssociation):
        return EventDUL(assoc)
    return DULServiceProvider(assoc)


def _dimse_for(assoc: Association) -> DIMSEServiceProvider:
    """The DIMSE provider ``Association.__init__`` creates: an ``EventDIMSE`` for an
    ``EventAssociation``, pynetdicom's own for any other association."""
    if isinstance(assoc, EventAssociation):
        return EventDIMSE(assoc)
    return DIMSEServiceProvider(assoc)


def install() -> None:
    """Make ``Association.__init__`` create its DUL and DIMSE provider through
    ``_dul_for`` and ``_dimse_for`` (it names both classes from its module's namespace),
    so that an ``EventAssociation`` is built with ours, not built with pynetdicom's and
    then given others."""
    setattr(pynetdicom.association, "DULServiceProvider", _dul_for)  # noqa: B010
    setattr(pynetdicom.association, "DIMSEServiceProvider", _dimse_for)  # noqa: B010
