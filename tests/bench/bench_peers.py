"""Peers for the load generator's tests: a counting pynetdicom SCP and misbehaving servers."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE

from rpi_async.bench.mix import DUP_ID
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import RPI_SOP_CLASSES

# Patient ID -> the final status the counting SCP answers with; IDs not here are misses.
HITS = ("DEMO000001", "DEMO000002")
FAILING = "DEMO000003"  # answered C000 (unable to process)
ANSWERS: dict[str, FindStatus] = {
    **dict.fromkeys(HITS, FindStatus.PENDING),
    FAILING: FindStatus.UNABLE_TO_PROCESS,
    DUP_ID: FindStatus.MORE_THAN_ONE_MATCH,
}


@dataclass
class CountingScp:
    """What the server itself saw: association requests, C-FINDs and final statuses sent."""

    host: str
    port: int
    answers: dict[str, FindStatus] = field(default_factory=lambda: dict(ANSWERS))
    requested: int = 0
    finds: int = 0
    pendings: int = 0
    finals: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def on_requested(self, event: Any) -> None:
        with self.lock:
            self.requested += 1

    def on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        patient_id = str(event.identifier.PatientID)
        answer = self.answers.get(patient_id)
        with self.lock:
            self.finds += 1
            if answer is FindStatus.PENDING:
                self.pendings += 1
                self.finals[FindStatus.SUCCESS] += 1
            else:
                self.finals[answer if answer is not None else FindStatus.SUCCESS] += 1
        if answer is FindStatus.PENDING:
            reply = Dataset()
            reply.PatientID = patient_id
            reply.PatientName = "Doe^Jane"
            yield FindStatus.PENDING, reply
        elif answer is not None:
            yield answer, None


def start_pynetdicom(
    handlers: Callable[[CountingScp], list[Any]], *, require_called: bool = False
) -> Iterator[CountingScp]:
    ae = AE(ae_title="RPI_SCP")
    ae.require_called_aet = require_called
    ae.maximum_associations = 64
    for uid in RPI_SOP_CLASSES:
        ae.add_supported_context(uid)
    scp = CountingScp("127.0.0.1", 0)
    server = ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers(scp))
    assert server is not None
    scp.port = server.server_address[1]
    try:
        yield scp
    finally:
        server.shutdown()
        ae.shutdown()


@dataclass
class RawServer:
    host: str
    port: int
    connections: int = 0


# A-ABORT from the service provider (source 2), reason 0 (PS3.8 §9.3.8).
ABORT_PDU = bytes([0x07, 0, 0, 0, 0, 4, 0, 0, 2, 0])
GARBAGE = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"
# A P-DATA-TF where an A-ASSOCIATE-AC is due: well-formed, but not allowed here.
UNEXPECTED_PDATA = bytes([0x04, 0, 0, 0, 0, 8, 0, 0, 0, 4, 1, 3, 0, 0])


async def raw_server(reply: bytes | None) -> AsyncIterator[RawServer]:
    """Accepts TCP; answers the first bytes received with ``reply`` (None: stays silent)."""
    info = RawServer("127.0.0.1", 0)
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        info.connections += 1
        writers.append(writer)
        try:
            if await reader.read(65536) and reply is not None:
                writer.write(reply)
                await writer.drain()
            await reader.read()  # hold the connection until the client closes it
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    info.port = server.sockets[0].getsockname()[1]
    try:
        yield info
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()
