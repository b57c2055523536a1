"""The native engine: the DICOM Upper Layer on asyncio directly, one process per worker.

Theory of operation. ``loop.create_server`` accepts connections with a large listen
backlog (a dropped SYN costs a client a one-second retransmit) and, with
``reuse_port``, lets several worker processes share the port. Each connection gets an
``AssociationProtocol``, a thin adapter over the sans-I/O ``rpi_async.ul.Connection``.
The engine keeps the policy (AE titles, contexts, limits), counts associations for the
``max_associations`` limit (beyond it: A-ASSOCIATE-RJ transient, local limit exceeded,
PS3.8 Table 9-21) and runs the graceful shutdown: stop accepting, wait for open
associations up to the grace period, abort the rest.

Access control (``engines.access``) is asked at A-ASSOCIATE-RQ time, in ``negotiate``: a
refused calling AE title or address and the per-peer limit become the rejections of
the one sans-I/O ``negotiate``. The bookkeeping of every association (outcome, stats,
per-peer slot, access log line) is ``engines.lifecycle``, shared with the pynetdicom
engine. The protocols see the engine only through ``protocol.ServerState``. With a TLS
context the transport is TLS from the first byte (the handshake must finish within
``acse_timeout``).

Shutdown: idle associations are ended at once (A-ABORT), busy ones get
``shutdown_grace`` to finish (their peers release once answered); meanwhile the server
keeps listening and answers every request, the listen queue's included, with
A-ASSOCIATE-RJ rejected-transient (local limit exceeded), a refusal a client retries,
and closes the listener only then, so no client that had sent a request is reset.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import Counter
from collections.abc import Callable

from rpi_async.config import Settings
from rpi_async.engines.access import Refusal
from rpi_async.engines.base import EngineContext
from rpi_async.engines.lifecycle import (
    MAX_UNASSOCIATED,
    MAX_UNASSOCIATED_PER_PEER,
    AssociationRecord,
    Lifecycle,
    ReceiveBudget,
    refuse_new_connections,
)
from rpi_async.engines.native.protocol import AssociationProtocol
from rpi_async.service.query import QueryService
from rpi_async.ul import AcceptorPolicy, Negotiation, negotiate
from rpi_async.ul.codes import PresentationRejectReason, RejectSource
from rpi_async.ul.pdu import AAssociateRJ, AAssociateRQ, RequestCache

log = logging.getLogger("rpi_async.ul")

DEFAULT_MAX_MESSAGE_LENGTH = 16 * 1024 * 1024
_LOCAL_LIMIT = (
    RejectSource.SERVICE_PROVIDER_PRESENTATION,
    PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
)


_NEGOTIATION_ENTRIES = 256
QUEUED_REFUSAL_WAIT = 2.0  # at shutdown, for the listen queue's requests to be refused


class NativeEngine:
    """Serves the QueryService with the project's own Upper Layer."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.settings: Settings = ctx.settings
        self.stats = ctx.stats
        self.access = ctx.access
        self.lifecycle = Lifecycle(ctx.stats, ctx.access)
        self.stopping = False
        self.max_message_length = DEFAULT_MAX_MESSAGE_LENGTH
        s = ctx.settings
        self.policy = AcceptorPolicy(
            ae_title=s.ae_title,
            accept_any_called_ae=s.accept_any_called_ae,
            calling_ae_titles=None,  # the access policy decides (titles and addresses)
            max_pdu_length=s.max_pdu_size,
        )
        self.connections: set[AssociationProtocol] = set()
        self.budget = ReceiveBudget()
        # Connections with no A-ASSOCIATE-RQ answered, by the address they were counted
        # under (a PROXY header may change the peer's address later).
        self._unassociated: dict[AssociationProtocol, str] = {}
        self._unassociated_by_peer: Counter[str] = Counter()
        self._loop: asyncio.AbstractEventLoop | None = None
        # Decoded requests, shared by this engine's connections: a peer's same request is
        # one value, so that _negotiate can memoize by its identity.
        self.requests = RequestCache()
        # (id(rq), over capacity, AE refused) -> (rq, policy, negotiation); see _negotiate.
        self._negotiations: dict[
            tuple[int, bool, bool], tuple[AAssociateRQ, AcceptorPolicy, Negotiation]
        ] = {}

    @property
    def service(self) -> QueryService:
        """The QueryService in use now (a database reload replaces it)."""
        return self.ctx.service

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None
        return self._loop

    # -- bookkeeping called by the protocols ------------------------------------------

    def connection_opened(self, protocol: AssociationProtocol) -> bool:
        """Count a new connection as waiting for its request; False: too many wait."""
        self.connections.add(protocol)
        address = protocol.peer.address
        if (
            len(self._unassociated) >= MAX_UNASSOCIATED
            or self._unassociated_by_peer[address] >= MAX_UNASSOCIATED_PER_PEER
        ):
            return False
        self._unassociated[protocol] = address  # as counted (a PROXY header may change it)
        self._unassociated_by_peer[address] += 1
        return True

    def request_answered(self, protocol: AssociationProtocol) -> None:
        address = self._unassociated.pop(protocol, None)
        if address is not None:
            self._unassociated_by_peer[address] -= 1
            if self._unassociated_by_peer[address] <= 0:
                del self._unassociated_by_peer[address]

    def connection_closed(self, protocol: AssociationProtocol) -> None:
        self.request_answered(protocol)
        self.connections.discard(protocol)

    def negotiate(self, rq: AAssociateRQ, record: AssociationRecord) -> Negotiation:
        """Answer an A-ASSOCIATE-RQ: access policy, capacity, then ``ul.negotiate``; the
        lifecycle records the outcome (and the per-peer slot, held until close)."""
        refusal = self.lifecycle.admit(record, rq.calling_ae_title)
        over = self.stopping or self.lifecycle.active >= self.settings.max_associations
        negotiation = self._negotiate(
            rq, over or refusal is Refusal.PEER_LIMIT, refusal is Refusal.CALLING_AE_NOT_RECOGNIZED
        )
        reply = negotiation.reply
        if isinstance(reply, AAssociateRJ):
            peer_limit = (
                refusal is Refusal.PEER_LIMIT and (reply.source, reply.reason) == _LOCAL_LIMIT
            )
            self.lifecycle.rejected(record, reply.source, reply.reason, peer_limit=peer_limit)
        else:
            self.lifecycle.accepted(record, rq.calling_ae_title, rq.called_ae_title)
        return negotiation

    def _negotiate(self, rq: AAssociateRQ, over: bool, ae_refused: bool) -> Negotiation:
        """``ul.negotiate``, memoized: it is a pure function of its arguments, and a peer
        sends the same request every time (``self.requests`` decodes it to one value)."""
        key = (id(rq), over, ae_refused)
        entry = self._negotiations.get(key)
        if entry is None or entry[0] is not rq or entry[1] is not self.policy:
            result = negotiate(rq, self.policy, over_capacity=over, calling_ae_refused=ae_refused)
            entry = (rq, self.policy, result)
            if len(self._negotiations) >= _NEGOTIATION_ENTRIES:
                self._negotiations.clear()
            self._negotiations[key] = entry
        return entry[2]

    # -- serving -----------------------------------------------------------------------

    async def serve(self, on_ready: Callable[[tuple[str, int]], None], stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        server = await self._loop.create_server(
            lambda: AssociationProtocol(self),
            self.settings.host,
            self.settings.port,
            backlog=self.settings.backlog,
            reuse_address=True,
            reuse_port=self.settings.reuse_port or None,
            ssl=self.ctx.ssl_context,
            ssl_handshake_timeout=self.settings.acse_timeout if self.ctx.ssl_context else None,
        )
        sockname = server.sockets[0].getsockname()
        on_ready((str(sockname[0]), int(sockname[1])))
        try:
            await stop.wait()
        finally:
            await self._drain()  # still listening: new requests get a transient refusal
            await self._close_listeners(server)
            for protocol in list(self.connections):
                protocol.abort_for_shutdown()
            await server.wait_closed()

    async def _close_listeners(self, server: asyncio.Server) -> None:
        """Stop listening without resetting the listen queue: the connections the kernel
        has queued are accepted and get their refusal (A-ASSOCIATE-RJ transient) before
        the listening sockets close; later ones are refused at connect."""
        held = [socket.socket(fileno=os.dup(s.fileno())) for s in server.sockets]
        server.close()  # asyncio stops accepting; our duplicates keep the queues
        queued: list[AssociationProtocol] = []
        for listener in held:
            listener.setblocking(False)
            # A SYN arriving now is dropped, not queued, so its client retries and is
            # refused at connect once the socket is closed.
            refuse_new_connections(listener)
            while True:
                try:
                    sock, _ = listener.accept()
                except OSError:  # empty (BlockingIOError), or the socket failed
                    break
                _, protocol = await self.loop.connect_accepted_socket(
                    lambda: AssociationProtocol(self),
                    sock,
                    ssl=self.ctx.ssl_context,
                    ssl_handshake_timeout=(
                        self.settings.acse_timeout if self.ctx.ssl_context else None
                    ),
                )
                queued.append(protocol)
            listener.close()
        if queued:
            await asyncio.wait({p.closed for p in queued}, timeout=QUEUED_REFUSAL_WAIT)

    async def _drain(self) -> None:
        """Until every connection open at the stop has ended, or the grace period is
        over: idle associations end now, busy ones finish, and requests (also from
        connections accepted meanwhile, the listen queue's) get A-ASSOCIATE-RJ
        transient."""
        self.stopping = True
        deadline = self.loop.time() + self.settings.shutdown_grace
        at_stop = set(self.connections)
        while True:
            for protocol in list(self.connections):
                protocol.end_if_idle()
            # Connections accepted since only get their refusal: they do not hold it up.
            waiting = {p.closed for p in self.connections if p in at_stop}
            remaining = deadline - self.loop.time()
            if not waiting or remaining <= 0:
                break
            await asyncio.wait(waiting, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
