"""What the native engine writes, and how often: one write per PDU exchange."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from benchmarks.assoc_cpu import MemoryTransport
from rpi_async import scu
from rpi_async.bench.pdu import (
    RELEASE_RQ,
    encode_associate_rq,
    encode_find_command,
    encode_find_pdata,
    parse_header,
)
from rpi_async.config.settings import Settings
from rpi_async.dicom.transfer import write_identifier
from rpi_async.dicom.uids import SopClass
from rpi_async.engines.base import EngineContext, ServiceSlot
from rpi_async.engines.lifecycle import Outcome
from rpi_async.engines.native.engine import NativeEngine
from rpi_async.engines.native.protocol import AssociationProtocol
from rpi_async.service.query import QueryService
from rpi_async.service.stats import ServerStats
from rpi_async.store.reader import PatientStore


class Transport(MemoryTransport):
    """The benchmark's in-memory transport, keeping each write apart."""

    def __init__(self, protocol: AssociationProtocol) -> None:
        super().__init__(protocol, 40000)
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        super().write(data)  # an A-RELEASE-RP: the peer has its answer and closes


def _pdus(data: bytes) -> list[int]:
    """The PDU types in ``data``, which holds whole PDUs only."""
    types, pos = [], 0
    while pos < len(data):
        pdu_type, length = parse_header(data, pos)
        types.append(pdu_type)
        pos += 6 + length
    assert pos == len(data)
    return types


@asynccontextmanager
async def native_engine(db: Path) -> AsyncIterator[NativeEngine]:
    """A NativeEngine on this loop, over ``db``, for connections driven by hand."""
    settings = Settings(db=db, engine="native", max_associations=8, max_associations_per_peer=0)
    store = await PatientStore.open(db, readers=1)
    try:
        stats = ServerStats()
        engine = NativeEngine(
            EngineContext(settings, ServiceSlot(QueryService(store, stats=stats)), stats)
        )
        engine._loop = asyncio.get_running_loop()
        yield engine
    finally:
        await store.close()


async def test_a_match_and_its_final_response_go_out_in_one_write(sample_db: Path) -> None:
    async with native_engine(sample_db) as engine:
        settings = engine.settings
        protocol = AssociationProtocol(engine)
        transport = Transport(protocol)
        protocol.connection_made(transport)  # type: ignore[arg-type]
        sop = SopClass.GENERAL_RPI_QUERY.value
        protocol.data_received(encode_associate_rq(settings.ae_title, "WRITES", sop))
        [context] = protocol.conn.accepted_contexts.values()
        request = scu.build_request("P0001", "HOSP_A")
        identifier = write_identifier(request, context.transfer_syntax)
        protocol.data_received(encode_find_pdata(encode_find_command(sop), identifier))
        protocol.data_received(RELEASE_RQ)
        await asyncio.wait_for(protocol.closed, 10)
        assert protocol.record.outcome is Outcome.RELEASED
        assert protocol.record.statuses == [0xFF00, 0x0000]
        # A-ASSOCIATE-AC; the match and the final Success together; A-RELEASE-RP.
        assert len(transport.writes) == 3
        assert _pdus(transport.writes[0]) == [0x02]
        assert len(_pdus(transport.writes[1])) >= 2
        assert set(_pdus(transport.writes[1])) == {0x04}
        assert _pdus(transport.writes[2]) == [0x06]


async def test_a_peers_same_request_is_decoded_and_negotiated_once(sample_db: Path) -> None:
    """The engine gives its connections one request cache, so that a peer's request on a
    later association is the same value and its negotiation is memoized."""
    async with native_engine(sample_db) as engine:
        requests = []
        for _ in range(3):
            protocol = AssociationProtocol(engine)
            protocol.connection_made(Transport(protocol))  # type: ignore[arg-type]
            sop = SopClass.GENERAL_RPI_QUERY.value
            protocol.data_received(encode_associate_rq(engine.settings.ae_title, "AGAIN", sop))
            requests.append(protocol.conn.request)
            protocol.data_received(RELEASE_RQ)
            await asyncio.wait_for(protocol.closed, 10)
            assert protocol.record.outcome is Outcome.RELEASED
        assert requests[0] is requests[1] is requests[2] is not None
        assert len(engine.requests) == 1
        assert len(engine._negotiations) == 1
