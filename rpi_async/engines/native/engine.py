"""The native engine: the DICOM Upper Layer on asyncio directly, one process per worker.

Theory of operation. ``loop.create_server`` accepts connections with a large listen
backlog (a dropped SYN costs a client a one-second retransmit) and, with
``reuse_port``, lets several worker processes share the port. Each connection gets an
``AssociationProtocol``, a thin adapter over the sans-I/O ``rpi_async.ul.Connection``.
The engine keeps the policy (AE titles, contexts, limits), counts associations for the
``max_associations`` limit (beyond it: A-ASSOCIATE-RJ transient, local limit exceeded,
PS3.8 Table 9-21) and runs the graceful shutdown: stop accepting, wait for open
associations up to the grace period, abort the rest.

Access control (``ops.access``) is asked at A-ASSOCIATE-RQ time, in ``negotiate``: a
refused calling AE title or address and the per-peer limit become the rejections of
the one sans-I/O ``negotiate``. An admitted connection holds its peer's slot until it
closes. With a TLS context the transport is TLS from the first byte (the handshake
must finish within ``acse_timeout``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from rpi_async.engines.assoc_log import PEER_LIMIT_REASON, REJECT_REASONS
from rpi_async.engines.base import EngineContext
from rpi_async.engines.native.protocol import AssociationProtocol
from rpi_async.ops.access import Refusal
from rpi_async.service.query import QueryService
from rpi_async.ul import AcceptorPolicy, Negotiation, negotiate
from rpi_async.ul.codes import PresentationRejectReason, RejectSource
from rpi_async.ul.pdu import AAssociateRJ, AAssociateRQ

log = logging.getLogger("rpi_async.ul")

DEFAULT_MAX_MESSAGE_LENGTH = 16 * 1024 * 1024
_LOCAL_LIMIT = (
    RejectSource.SERVICE_PROVIDER_PRESENTATION,
    PresentationRejectReason.LOCAL_LIMIT_EXCEEDED,
)


_NEGOTIATION_ENTRIES = 256


class NativeEngine:
    """Serves the QueryService with the project's own Upper Layer."""

    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.stats = ctx.stats
        self.access = ctx.access
        self.max_message_length = DEFAULT_MAX_MESSAGE_LENGTH
        s = ctx.settings
        self.policy = AcceptorPolicy(
            ae_title=s.ae_title,
            accept_any_called_ae=s.accept_any_called_ae,
            calling_ae_titles=None,  # the access policy decides (titles and addresses)
            max_pdu_length=s.max_pdu_size,
        )
        self.active = 0  # established associations holding a slot
        self.connections: set[AssociationProtocol] = set()
        self._admitted: dict[AssociationProtocol, str] = {}  # holding a per-peer slot
        self._loop: asyncio.AbstractEventLoop | None = None
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

    def connection_opened(self, protocol: AssociationProtocol) -> None:
        self.connections.add(protocol)

    def connection_closed(self, protocol: AssociationProtocol) -> None:
        self.connections.discard(protocol)
        address = self._admitted.pop(protocol, None)
        if address is not None:
            self.access.release(address)

    def negotiate(
        self, rq: AAssociateRQ, protocol: AssociationProtocol
    ) -> tuple[Negotiation, str | None]:
        """Answer an A-ASSOCIATE-RQ: access policy, capacity, then ``ul.negotiate``.

        Returns the negotiation and, when the access policy caused a rejection, the
        reason to count (None: the reply's own reason)."""
        decision = self.access.admit(rq.calling_ae_title, protocol.peer.address)
        refusal = decision.refusal
        over = self.active >= self.settings.max_associations or refusal is Refusal.PEER_LIMIT
        negotiation = self._negotiate(rq, over, refusal is Refusal.CALLING_AE_NOT_RECOGNIZED)
        if decision.admitted:
            if negotiation.is_accepted:
                self._admitted[protocol] = protocol.peer.address
            else:
                self.access.release(protocol.peer.address)
            return negotiation, None
        reply = negotiation.reply
        if (
            refusal is Refusal.PEER_LIMIT
            and isinstance(reply, AAssociateRJ)
            and (reply.source, reply.reason) == _LOCAL_LIMIT
        ):
            return negotiation, PEER_LIMIT_REASON
        return negotiation, None

    def _negotiate(self, rq: AAssociateRQ, over: bool, ae_refused: bool) -> Negotiation:
        """``ul.negotiate``, memoized: it is a pure function of its arguments, and a peer
        sends the same request every time (the decoder shares one value per request)."""
        key = (id(rq), over, ae_refused)
        entry = self._negotiations.get(key)
        if entry is None or entry[0] is not rq or entry[1] is not self.policy:
            result = negotiate(rq, self.policy, over_capacity=over, calling_ae_refused=ae_refused)
            entry = (rq, self.policy, result)
            if len(self._negotiations) >= _NEGOTIATION_ENTRIES:
                self._negotiations.clear()
            self._negotiations[key] = entry
        return entry[2]

    def association_accepted(self) -> None:
        self.active += 1
        self.stats.association_opened()

    def association_closed(self, *, aborted: bool) -> None:
        self.active -= 1
        self.stats.association_closed(aborted=aborted)

    @staticmethod
    def reject_reason(result: int, source: int, reason: int) -> str:
        return REJECT_REASONS.get((source, reason), f"source-{source}-reason-{reason}")

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
            server.close()  # stop accepting; open connections stay
            await self._drain()
            await server.wait_closed()

    async def _drain(self) -> None:
        pending = {p.closed for p in self.connections}
        if pending:
            _, still_open = await asyncio.wait(pending, timeout=self.settings.shutdown_grace)
            if still_open:
                for protocol in list(self.connections):
                    protocol.abort_for_shutdown()
                await asyncio.wait(still_open, timeout=1.0)
