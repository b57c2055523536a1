"""A raw-socket requestor for tests that must send what no well-behaved SCU would.

Built on the load generator's independent requestor encoder (``rpi_async.bench.pdu``);
every socket operation has a timeout, so a misbehaving server fails the test instead
of hanging it.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass

from rpi_async.bench import pdu
from rpi_async.dicom.uids import SopClass


@dataclass
class Received:
    pdu_type: int
    body: bytes


class RawPeer:
    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _read_exactly(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("peer closed the connection")
            out += chunk
        return bytes(out)

    def receive(self) -> Received:
        pdu_type, _, length = struct.unpack(">BBI", self._read_exactly(6))
        return Received(pdu_type, self._read_exactly(length))

    def closed_by_peer(self) -> bool:
        """True when the peer closes the connection (reads until EOF, within the timeout)."""
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            return True
        return True

    def associate(
        self, sop_class: str = SopClass.GENERAL_RPI_QUERY, called: str = "RPI_SCP"
    ) -> pdu.AssociateAccept:
        self.send(pdu.encode_associate_rq(called, "RAW_PEER", sop_class))
        reply = self.receive()
        assert reply.pdu_type == pdu.PduType.ASSOCIATE_AC, reply
        return pdu.parse_associate_ac(reply.body)

    def find_raw(
        self,
        identifier: bytes,
        sop_class: str = SopClass.GENERAL_RPI_QUERY,
        datasets: list[bytes] | None = None,
        commands: list[bytes] | None = None,
        *,
        message_id: int = 1,
        send: bool = True,
    ) -> list[pdu.CommandSummary]:
        """Send a C-FIND with arbitrary identifier bytes; return response commands.

        Response identifiers and command sets, as received, are appended to ``datasets``
        and ``commands`` when given. ``send=False`` only reads the responses of a C-FIND
        sent before.
        """
        if send:
            self.send(
                pdu.encode_find_pdata(pdu.encode_find_command(sop_class, message_id), identifier)
            )
        out: list[pdu.CommandSummary] = []
        command = b""
        data = b""
        while True:
            reply = self.receive()
            assert reply.pdu_type == pdu.PduType.P_DATA_TF, reply
            for pdv in pdu.parse_pdata(reply.body):
                if not pdv.is_command:
                    data += pdv.fragment
                    if pdv.is_last and datasets is not None:
                        datasets.append(data)
                    if pdv.is_last:
                        data = b""
                    continue
                command += pdv.fragment
                if pdv.is_last:
                    summary = pdu.parse_command(command)
                    if commands is not None:
                        commands.append(command)
                    command = b""
                    out.append(summary)
                    if summary.status not in (0xFF00, 0xFF01):
                        return out

    def cancel(self, message_id: int, context_id: int = pdu.CONTEXT_ID) -> None:
        """Send a C-CANCEL-RQ for ``message_id`` (PS3.7 C.4.2.1.3)."""
        elements = (
            pdu._implicit(0x00000100, struct.pack("<H", 0x0FFF))
            + pdu._implicit(0x00000120, struct.pack("<H", message_id))
            + pdu._implicit(0x00000800, struct.pack("<H", 0x0101))
        )
        command = pdu._implicit(0x00000000, struct.pack("<I", len(elements))) + elements
        body = pdu._pdv(context_id, pdu.PDV_COMMAND | pdu.PDV_LAST, command)
        self.send(pdu._pdu(pdu.PduType.P_DATA_TF, body))

    def release(self) -> None:
        self.send(pdu.RELEASE_RQ)
        reply = self.receive()
        assert reply.pdu_type == pdu.PduType.RELEASE_RP, reply
