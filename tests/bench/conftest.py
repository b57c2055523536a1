"""Fixtures for the load generator's tests: the peers of bench_peers, started and stopped."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from pynetdicom import evt

from tests.bench.bench_peers import (
    ABORT_PDU,
    GARBAGE,
    UNEXPECTED_PDATA,
    CountingScp,
    RawServer,
    raw_server,
    start_pynetdicom,
)


@pytest.fixture
def counting_scp() -> Iterator[CountingScp]:
    """A pynetdicom RPI SCP answering from ``ANSWERS`` and counting what it saw."""
    yield from start_pynetdicom(
        lambda scp: [(evt.EVT_REQUESTED, scp.on_requested), (evt.EVT_C_FIND, scp.on_find)]
    )


@pytest.fixture
def strict_scp() -> Iterator[CountingScp]:
    """The same SCP, rejecting any called AE title but RPI_SCP."""
    yield from start_pynetdicom(
        lambda scp: [(evt.EVT_REQUESTED, scp.on_requested), (evt.EVT_C_FIND, scp.on_find)],
        require_called=True,
    )


@pytest.fixture
async def aborting_server() -> AsyncIterator[RawServer]:
    async for server in raw_server(ABORT_PDU):
        yield server


@pytest.fixture
async def silent_server() -> AsyncIterator[RawServer]:
    async for server in raw_server(None):
        yield server


@pytest.fixture(params=[GARBAGE, UNEXPECTED_PDATA], ids=["garbage", "unexpected-pdu"])
async def garbage_server(request: pytest.FixtureRequest) -> AsyncIterator[RawServer]:
    """Answers the A-ASSOCIATE-RQ with bytes that are not an A-ASSOCIATE-AC."""
    async for server in raw_server(request.param):
        yield server


@pytest.fixture
def free_port() -> int:
    """A port nothing listens on (bound once, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port
