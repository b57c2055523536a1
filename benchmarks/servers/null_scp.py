"""A null SCP: the cheapest server that still completes the generator's associations.

It measures the load generator's own ceiling on this machine. It parses nothing but PDU
headers (PS3.8 §9.3.1) and answers from canned bytes: any A-ASSOCIATE-RQ with an
A-ASSOCIATE-AC accepting presentation context 1 in Implicit VR Little Endian, any
P-DATA-TF with a final C-FIND-RSP of status Success and no data set, A-RELEASE-RQ with
A-RELEASE-RP. It is not a DICOM implementation and answers no real query.

Run: ``python -m benchmarks.servers.null_scp --port PORT``; prints ``listening on
HOST:PORT`` and runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
import struct
from typing import cast

import uvloop

from rpi_async.bench import pdu
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import APPLICATION_CONTEXT_NAME, TransferSyntax


def _item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0, element, len(value)) + value


def _canned_accept() -> bytes:
    context = struct.pack(">BBBB", pdu.CONTEXT_ID, 0, pdu.PC_ACCEPTANCE, 0) + _item(
        pdu.ItemType.TRANSFER_SYNTAX, TransferSyntax.IMPLICIT_VR_LE.value.encode("ascii")
    )
    user = _item(pdu.ItemType.MAXIMUM_LENGTH, struct.pack(">I", 1 << 16))
    body = (
        struct.pack(">HH", 1, 0)
        + b"NULL_SCP".ljust(16)
        + b"BENCH".ljust(16)
        + bytes(32)
        + _item(pdu.ItemType.APPLICATION_CONTEXT, APPLICATION_CONTEXT_NAME.encode("ascii"))
        + _item(pdu.ItemType.PRESENTATION_CONTEXT_AC, context)
        + _item(pdu.ItemType.USER_INFORMATION, user)
    )
    return struct.pack(">BBI", pdu.PduType.ASSOCIATE_AC, 0, len(body)) + body


def _canned_find_success() -> bytes:
    elements = (
        _element(0x0100, struct.pack("<H", pdu.CommandField.C_FIND_RSP))
        + _element(0x0120, struct.pack("<H", 1))
        + _element(0x0800, struct.pack("<H", pdu.NO_DATA_SET))
        + _element(0x0900, struct.pack("<H", FindStatus.SUCCESS))
    )
    command = _element(0x0000, struct.pack("<I", len(elements))) + elements
    pdv = struct.pack(">IBB", len(command) + 2, pdu.CONTEXT_ID, 0x03) + command
    return struct.pack(">BBI", pdu.PduType.P_DATA_TF, 0, len(pdv)) + pdv


REPLIES: dict[int, bytes] = {
    pdu.PduType.ASSOCIATE_RQ: _canned_accept(),
    pdu.PduType.P_DATA_TF: _canned_find_success(),
    pdu.PduType.RELEASE_RQ: pdu.RELEASE_RP,
}


class NullProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        while len(self.buffer) >= pdu.PDU_HEADER_LENGTH:
            pdu_type, _, length = struct.unpack_from(">BBI", self.buffer)
            if len(self.buffer) < pdu.PDU_HEADER_LENGTH + length:
                return
            del self.buffer[: pdu.PDU_HEADER_LENGTH + length]
            reply = REPLIES.get(pdu_type)
            if reply is None:
                self.transport.close()
                return
            self.transport.write(reply)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(NullProtocol, host, port, backlog=4096)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"listening on {host}:{port}", flush=True)
    await stop.wait()
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
