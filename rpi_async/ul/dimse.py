"""DIMSE messages over P-DATA: PDV reassembly and fragmentation (PS3.8 Annex E, PS3.7 §6.3).

Theory of operation
-------------------
A message is its command set, then (if Command Data Set Type says so) its data set,
each cut into fragments carried in PDV items; the message control header of each PDV
says command or data set (bit 0) and last fragment or not (bit 1). PDVs of one
message are contiguous and on one presentation context: no other message's fragments
may be interleaved (PS3.7 §6.3.1).

``MessageAssembler`` is fed the PDVs of each P-DATA-TF in order and returns the
complete messages. It refuses a PDV on a context that was not accepted, a data set
fragment with no command before it, a command fragment where the data set was due,
a context change inside a message and a message larger than its bound; each raises
``InvalidParameter``, which the connection turns into an A-ABORT (Evt19).

``fragment_message`` goes the other way: it packs the command PDVs, then the data set
PDVs, greedily into P-DATA-TF PDUs whose variable field never exceeds the peer's
Maximum Length Received (PS3.8 Annex D.1; 0 means no limit). A small response fits in
a single PDU with two PDVs; a large data set fills each PDU to the limit.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

from rpi_async.ul.codes import MCH_COMMAND, MCH_LAST, PduType
from rpi_async.ul.commands import DimseCommand, decode_command, encode_command
from rpi_async.ul.errors import InvalidParameter, LocalProtocolError
from rpi_async.ul.events import DimseMessage
from rpi_async.ul.pdu import PDU_HEADER, PDV_HEADER, PresentationDataValue

DEFAULT_MAX_MESSAGE_LENGTH = 1 << 24
_PDV_OVERHEAD = PDV_HEADER.size  # item length (4), context ID (1), control header (1)
_PDATA = PduType.P_DATA_TF
_CMD_LAST = MCH_COMMAND | MCH_LAST


class MessageAssembler:
    """Reassembles the PDVs of one association into ``DimseMessage`` events."""

    __slots__ = (
        "_accepted",
        "_command",
        "_command_parts",
        "_context_id",
        "_dataset_parts",
        "_max_length",
        "_size",
    )

    def __init__(
        self, accepted: Container[int], max_message_length: int = DEFAULT_MAX_MESSAGE_LENGTH
    ) -> None:
        self._accepted = accepted
        self._max_length = max_message_length
        self._context_id: int | None = None
        self._command_parts: list[bytes] = []
        self._command: DimseCommand | None = None
        self._dataset_parts: list[bytes] = []
        self._size = 0

    @property
    def in_progress(self) -> bool:
        """True between the first fragment of a message and its last."""
        return self._context_id is not None

    @property
    def size(self) -> int:
        """Bytes of the message in progress held so far."""
        return self._size

    def add(self, pdvs: Iterable[PresentationDataValue]) -> list[DimseMessage]:
        """Take the PDVs of one P-DATA-TF; return the messages they complete."""
        done: list[DimseMessage] = []
        for pdv in pdvs:
            message = self._add_one(pdv)
            if message is not None:
                done.append(message)
        return done

    def _add_one(self, pdv: PresentationDataValue) -> DimseMessage | None:
        context_id = pdv.context_id
        if self._context_id is None:
            if context_id not in self._accepted:
                raise InvalidParameter(
                    f"PDV on presentation context {context_id}, which was not accepted"
                )
            self._context_id = context_id
        elif context_id != self._context_id:
            raise InvalidParameter(
                f"PDV on context {context_id} inside a message on context {self._context_id}"
            )
        self._size += len(pdv.data)
        if self._size > self._max_length:
            raise InvalidParameter(f"DIMSE message longer than {self._max_length} bytes")
        if pdv.is_command:
            if self._command is not None:
                raise InvalidParameter("command fragment where the data set was expected")
            self._command_parts.append(pdv.data)
            if not pdv.is_last:
                return None
            raw = (
                self._command_parts[0]
                if len(self._command_parts) == 1
                else (b"".join(self._command_parts))
            )
            command, has_dataset = decode_command(raw)
            if has_dataset:
                self._command = command
                return None
            self._reset()
            return DimseMessage(context_id, command, None)
        if self._command is None:
            raise InvalidParameter("data set fragment without its command")
        self._dataset_parts.append(pdv.data)
        if not pdv.is_last:
            return None
        command = self._command
        parts = self._dataset_parts
        dataset = parts[0] if len(parts) == 1 else b"".join(parts)
        self._reset()
        return DimseMessage(context_id, command, dataset)

    def _reset(self) -> None:
        self._context_id = None
        self._command = None
        self._command_parts = []
        self._dataset_parts = []
        self._size = 0


def fragment_message(
    context_id: int, command: bytes, dataset: bytes | None, max_pdu_length: int
) -> bytes:
    """P-DATA-TF PDUs carrying ``command`` then ``dataset`` within ``max_pdu_length``."""
    if not command:
        raise LocalProtocolError("an empty command set")
    if dataset is not None and not dataset:
        raise LocalProtocolError("an empty data set: pass None when there is none")
    total = len(command) + _PDV_OVERHEAD
    if dataset is not None:
        total += len(dataset) + _PDV_OVERHEAD
    if max_pdu_length == 0 or total <= max_pdu_length:
        # The common case: the whole message in one PDU.
        parts = [
            PDU_HEADER.pack(_PDATA, total),
            PDV_HEADER.pack(len(command) + 2, context_id, _CMD_LAST),
            command,
        ]
        if dataset is not None:
            parts.append(PDV_HEADER.pack(len(dataset) + 2, context_id, MCH_LAST))
            parts.append(dataset)
        return b"".join(parts)
    return _fragment_greedy(context_id, command, dataset, max_pdu_length)


def _fragment_greedy(
    context_id: int, command: bytes, dataset: bytes | None, max_pdu_length: int
) -> bytes:
    out = bytearray()
    header_at = -1
    room = 0
    streams: list[tuple[bytes, int]] = [(command, MCH_COMMAND)]
    if dataset is not None:
        streams.append((dataset, 0))
    for data, kind in streams:
        view = memoryview(data)
        size = len(data)
        offset = 0
        while offset < size:
            if room <= _PDV_OVERHEAD:
                if header_at >= 0:
                    PDU_HEADER.pack_into(out, header_at, _PDATA, len(out) - header_at - 6)
                header_at = len(out)
                out += bytes(6)
                # A PDV needs 7 bytes at least; a peer limit below that is honoured as far
                # as it can be (one byte per fragment).
                room = max(max_pdu_length, _PDV_OVERHEAD + 1)
            take = min(size - offset, room - _PDV_OVERHEAD)
            control = kind | (MCH_LAST if offset + take == size else 0)
            out += PDV_HEADER.pack(take + 2, context_id, control)
            out += view[offset : offset + take]
            offset += take
            room -= take + _PDV_OVERHEAD
    PDU_HEADER.pack_into(out, header_at, _PDATA, len(out) - header_at - 6)
    return bytes(out)


def encode_message(
    context_id: int, command: DimseCommand, dataset: bytes | None, max_pdu_length: int
) -> bytes:
    """Command set + data set of one message as ready-to-send P-DATA-TF PDUs."""
    return fragment_message(
        context_id, encode_command(command, dataset is not None), dataset, max_pdu_length
    )
