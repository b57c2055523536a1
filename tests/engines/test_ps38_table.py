"""Malformed and borderline input, one table, both engines: the answer PS3.8 / PS3.7 give.

Each case is the bytes a raw peer sends (before association, or after an accepted
one) and the one answer expected: A-ASSOCIATE-AC, A-ASSOCIATE-RJ (result, source,
reason; PS3.8 Table 9-21), A-ABORT (source, reason; Table 9-26), a C-FIND-RSP status,
or a close with no PDU (AA-2). After each case the server still serves a C-FIND.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from rpi_async import scu
from rpi_async.bench import pdu
from rpi_async.config.settings import ENGINES
from rpi_async.dicom.uids import APPLICATION_CONTEXT_NAME, SopClass, TransferSyntax
from rpi_async.ul.codes import AbortReason
from tests.conftest import RunningServer, ServerThread, make_db, server_settings
from tests.engines.raw_peer import RawPeer

pytestmark = pytest.mark.network

IMPLICIT = TransferSyntax.IMPLICIT_VR_LE.value
RPI = SopClass.GENERAL_RPI_QUERY.value
PROVIDER = 2  # A-ABORT source: DICOM UL service-provider


def item(item_type: int, body: bytes) -> bytes:
    return struct.pack(">BBH", item_type, 0, len(body)) + body


def context(context_id: int, abstract: str = RPI, syntaxes: tuple[str, ...] = (IMPLICIT,)) -> bytes:
    body = struct.pack(">BBBB", context_id, 0, 0, 0) + item(0x30, abstract.encode())
    return item(0x20, body + b"".join(item(0x40, ts.encode()) for ts in syntaxes))


def rq(
    *,
    version: int = 1,
    calling: bytes = b"TABLE".ljust(16),
    app: bytes | None = APPLICATION_CONTEXT_NAME.encode(),
    contexts: bytes = context(1),
    extra: bytes = b"",
) -> bytes:
    body = struct.pack(">HH", version, 0) + b"RPI_SCP".ljust(16) + calling + bytes(32)
    if app is not None:
        body += item(0x10, app)
    body += contexts + extra + item(0x50, item(0x51, struct.pack(">I", 16384)))
    return struct.pack(">BxI", 1, len(body)) + body


AC = ("AC",)
CLOSE = ("close",)


def rj(result: int, source: int, reason: int) -> tuple[object, ...]:
    return ("RJ", result, source, reason)


def abort(reason: AbortReason) -> tuple[object, ...]:
    return ("A-ABORT", PROVIDER, int(reason))


def status(value: int) -> tuple[object, ...]:
    return ("status", value)


INVALID = abort(AbortReason.INVALID_PDU_PARAMETER_VALUE)
UNRECOGNIZED = abort(AbortReason.UNRECOGNIZED_PDU)
UNEXPECTED = abort(AbortReason.UNEXPECTED_PDU)
REFUSED = status(0x0122)  # SOP class not supported (PS3.7 C.4.1.1.4)


def find_pdata(command: bytes, context_id: int = 1) -> bytes:
    return pdu.encode_find_pdata(command, bytes(8), context_id)


def command_without(tag: int) -> bytes:
    """A C-FIND-RQ command set lacking one element."""
    full = pdu.encode_find_command(RPI)
    elements, offset = b"", 12  # after the group length element
    while offset < len(full):
        element_tag, length = struct.unpack_from("<II", full, offset)
        element_tag = (element_tag & 0xFFFF) << 16 | element_tag >> 16
        end = offset + 8 + length
        if element_tag != tag:
            elements += full[offset:end]
        offset = end
    return pdu._implicit(0x00000000, struct.pack("<I", len(elements))) + elements


def find_with_sop_bytes(raw_uid: bytes) -> bytes:
    full = pdu.encode_find_command(RPI)
    good = pdu._implicit(0x00000002, pdu._uid_value(RPI))
    bad = pdu._implicit(0x00000002, raw_uid + b"\x00" * (len(raw_uid) % 2))
    elements = full[12:].replace(good, bad)
    return pdu._implicit(0x00000000, struct.pack("<I", len(elements))) + elements


@dataclass(frozen=True)
class Case:
    sent: bytes
    expected: tuple[object, ...]
    associated: bool = False  # sent after an accepted A-ASSOCIATE-RQ


CASES: dict[str, Case] = {
    # Before association (Sta2).
    "unknown PDU type": Case(b"\x0a\x00\x00\x00\x00\x04abcd", UNRECOGNIZED),
    "A-RELEASE-RQ of length 2": Case(b"\x05\x00\x00\x00\x00\x02\x00\x00", INVALID),
    "A-RELEASE-RQ of length 6": Case(b"\x05\x00\x00\x00\x00\x06" + bytes(6), INVALID),
    "truncated 40-byte A-ASSOCIATE-RQ": Case(b"\x01\x00\x00\x00\x00\x28" + rq()[6:46], INVALID),
    "P-DATA before association": Case(find_pdata(pdu.encode_find_command(RPI)), UNEXPECTED),
    "2 GiB A-ASSOCIATE-RQ length": Case(b"\x01\x00\x80\x00\x00\x00" + bytes(1024), INVALID),
    "A-ABORT awaiting the request": Case(pdu.ABORT, CLOSE),
    "no application context": Case(rq(app=None), rj(1, 1, 2)),
    "wrong application context": Case(rq(app=b"1.2.3.4"), rj(1, 1, 2)),
    "no presentation context": Case(rq(contexts=b""), rj(1, 1, 1)),
    "protocol version 0xFFFF": Case(rq(version=0xFFFF), AC),
    "protocol version 2 only": Case(rq(version=2), rj(1, 2, 2)),
    "unknown top-level item": Case(rq(extra=item(0x99, b"ignored")), AC),
    "even context ID": Case(rq(contexts=context(2)), INVALID),
    "context ID zero": Case(rq(contexts=context(0)), INVALID),
    "context without transfer syntax": Case(rq(contexts=context(1, syntaxes=())), INVALID),
    "calling AE with a line feed": Case(rq(calling=b"MODALITY1\n".ljust(16)), rj(1, 1, 3)),
    "calling AE with an ANSI escape": Case(rq(calling=b"\x1b[31mX".ljust(16)), rj(1, 1, 3)),
    "calling AE with a backslash": Case(rq(calling=b"A\\B".ljust(16)), rj(1, 1, 3)),
    "blank calling AE": Case(rq(calling=b" " * 16), rj(1, 1, 3)),
    "NUL-padded calling AE": Case(rq(calling=b"TABLE".ljust(16, b"\x00")), AC),
    # In an association (Sta6).
    "2 GiB P-DATA length": Case(b"\x04\x00\x80\x00\x00\x00" + bytes(1024), INVALID, True),
    "P-DATA over max_pdu_size": Case(b"\x04\x00\x00\x10\x00\x00" + bytes(1024), INVALID, True),
    "A-RELEASE-RQ of length 6 in an association": Case(
        b"\x05\x00\x00\x00\x00\x06" + bytes(6), INVALID, True
    ),
    "unknown PDU type in an association": Case(b"\x0a\x00\x00\x00\x00\x04abcd", UNRECOGNIZED, True),
    "second A-ASSOCIATE-RQ": Case(rq(), UNEXPECTED, True),
    "PDV on a context not accepted": Case(
        find_pdata(pdu.encode_find_command(RPI), 5), INVALID, True
    ),
    "command set without Message ID": Case(find_pdata(command_without(0x00000110)), INVALID, True),
    "command set without Affected SOP Class UID": Case(
        find_pdata(command_without(0x00000002)), REFUSED, True
    ),
    "non-ASCII byte in the Affected SOP Class UID": Case(
        find_pdata(find_with_sop_bytes(RPI[:-1].encode() + b"\xe9")), REFUSED, True
    ),
    "C-FIND on the Verification context": Case(
        find_pdata(pdu.encode_find_command(RPI), 3), REFUSED, True
    ),
}


@pytest.fixture(scope="module", params=ENGINES)
def table_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    db = make_db(tmp_path_factory.mktemp(f"table-{request.param}") / "sample.sqlite3")
    thread = ServerThread(server_settings(db, str(request.param), max_pdu_size=65536))
    running = thread.start()
    try:
        yield running
    finally:
        thread.stop()


def answer(peer: RawPeer) -> tuple[object, ...]:
    try:
        reply = peer.receive()
    except (ConnectionError, OSError):
        return CLOSE
    if reply.pdu_type == pdu.PduType.ASSOCIATE_AC:
        return AC
    if reply.pdu_type == pdu.PduType.ASSOCIATE_RJ:
        return ("RJ", *reply.body[1:4])
    if reply.pdu_type == pdu.PduType.ABORT:
        return ("A-ABORT", reply.body[2], reply.body[3])
    assert reply.pdu_type == pdu.PduType.P_DATA_TF, reply
    command = b"".join(p.fragment for p in pdu.parse_pdata(reply.body) if p.is_command)
    found = pdu.parse_command(command).status
    assert found is not None
    return status(found)


def associate(peer: RawPeer) -> None:
    contexts = context(1) + context(3, SopClass.VERIFICATION.value)
    peer.send(rq(contexts=contexts))
    assert answer(peer) == AC


@pytest.mark.parametrize("name", sorted(CASES))
def test_ps38_case(table_server: RunningServer, name: str) -> None:
    case = CASES[name]
    with RawPeer(table_server.host, table_server.port, timeout=10) as peer:
        if case.associated:
            associate(peer)
        peer.send(case.sent)
        assert answer(peer) == case.expected
        if case.expected == CLOSE:
            assert peer.closed_by_peer()
    responses = scu.find(
        table_server.host, table_server.port, scu.build_request("P0001", "HOSP_A"), timeout=10
    )
    assert [r.status for r in responses] == [0xFF00, 0]


def test_abort_after_reject_closes(table_server: RunningServer) -> None:
    """PS3.8 AA-2 in Sta13: an A-ABORT after our A-ASSOCIATE-RJ closes at once."""
    with RawPeer(table_server.host, table_server.port, timeout=5) as peer:
        peer.send(rq(calling=b"BAD\n".ljust(16)))
        assert answer(peer)[0] == "RJ"
        peer.send(pdu.ABORT)
        peer.sock.settimeout(3)
        try:
            assert peer.sock.recv(1) == b""
        except ConnectionResetError:
            pass
        except TimeoutError:
            pytest.fail("connection left open after A-ABORT in Sta13")
