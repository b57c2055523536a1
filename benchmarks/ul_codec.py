"""Micro-benchmark of the Upper Layer core's hot paths, beside pynetdicom's PDU classes.

    python -m benchmarks.ul_codec [--repeat N]

Prints microseconds per operation for rpi_async.ul and for the pynetdicom code that
does the same job in its acceptor, and their ratio. Each figure is the best of
``--repeat`` timeit runs (autoranged), so it measures the code, not the machine's noise.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.dimse_messages import C_FIND_RSP, DIMSEMessage
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.dsutils import encode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
)
from pynetdicom.presentation import PresentationContext, build_context, negotiate_as_acceptor

from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import PREFERRED_TRANSFER_SYNTAXES, SopClass
from rpi_async.ul import AcceptorPolicy, Connection, DimseMessage, negotiate
from rpi_async.ul.commands import CFindRQ, CFindRSP, Priority
from rpi_async.ul.dimse import MessageAssembler, encode_message
from rpi_async.ul.pdu import (
    AAssociateAC,
    AAssociateRQ,
    AReleaseRQ,
    RequestCache,
    read_pdu,
    write_pdu,
)

TRANSFER_SYNTAXES = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"]
PROPOSED = [
    SopClass.GENERAL_RPI_QUERY,
    SopClass.BREAST_RPI_QUERY,
    SopClass.CARDIAC_RPI_QUERY,
    SopClass.VERIFICATION,
]
LIMIT = 1 << 20


def _requestor_rq() -> bytes:
    """A typical query client's A-ASSOCIATE-RQ: four classes, three syntaxes each."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.called_ae_title = "RPI_SCP"
    primitive.calling_ae_title = "FINDSCU"
    contexts = []
    for i, uid in enumerate(PROPOSED):
        context = build_context(str(uid), TRANSFER_SYNTAXES)
        context.context_id = 2 * i + 1
        contexts.append(context)
    primitive.presentation_context_definition_list = contexts
    maximum = MaximumLengthNotification()
    maximum.maximum_length_received = 16382
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = "1.2.826.0.1.3680043.9.3811.2.0.0"
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = "PYNETDICOM_200"
    primitive.user_information = [maximum, class_uid, version]
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return bytes(pdu.encode())


def _identifier(size: int) -> bytes:
    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "P0001"
    ds.IssuerOfPatientID = "HOSP_A"
    ds.PatientComments = "x" * max(size - 60, 0)
    data = encode(ds, True, True)
    assert data is not None
    return data


def _pynetdicom_message(message: DIMSEMessage, context_id: int, max_pdu: int) -> bytes:
    out = []
    for primitive in message.encode_msg(context_id, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        out.append(pdu.encode())
    return b"".join(out)


class Fixtures:
    """Everything built once, outside the timed loops."""

    def __init__(self) -> None:
        self.rq_bytes = _requestor_rq()
        parsed = read_pdu(self.rq_bytes, LIMIT)
        assert parsed is not None
        rq = parsed[0]
        assert isinstance(rq, AAssociateRQ)
        self.rq = rq
        self.policy = AcceptorPolicy("RPI_SCP")
        reply = negotiate(rq, self.policy).reply
        assert isinstance(reply, AAssociateAC)
        self.ac = reply

        theirs = A_ASSOCIATE_RQ()
        theirs.decode(self.rq_bytes)
        self.their_rq_primitive = theirs.to_primitive()
        self.their_supported = [
            build_context(str(uid), [str(ts) for ts in PREFERRED_TRANSFER_SYNTAXES])
            for uid in SopClass
        ]
        results, _ = negotiate_as_acceptor(
            self.their_rq_primitive.presentation_context_definition_list,
            self.their_supported,
        )
        ac_primitive = A_ASSOCIATE()
        ac_primitive.application_context_name = "1.2.840.10008.3.1.1.1"
        ac_primitive.called_ae_title = "RPI_SCP"
        ac_primitive.calling_ae_title = "FINDSCU"
        ac_primitive.result = 0x00
        ac_primitive.presentation_context_definition_results_list = results
        maximum = MaximumLengthNotification()
        maximum.maximum_length_received = 16384
        class_uid = ImplementationClassUIDNotification()
        class_uid.implementation_class_uid = "1.2.826.0.1.3680043.10.1477.1.1"
        ac_primitive.user_information = [maximum, class_uid]
        self.their_ac_primitive = ac_primitive

        self.query = _identifier(120)
        self.find_bytes = encode_message(
            1, CFindRQ(7, SopClass.GENERAL_RPI_QUERY, Priority.MEDIUM), self.query, 16382
        )
        self.response = _identifier(600)
        self.uid = str(SopClass.GENERAL_RPI_QUERY)


def ours_decode_rq(f: Fixtures) -> Callable[[], object]:
    """A request never seen before (no request cache)."""
    data = f.rq_bytes
    return lambda: read_pdu(data, LIMIT)


def ours_decode_rq_again(f: Fixtures) -> Callable[[], object]:
    """The same request bytes again, as a client sends on every association, through the
    engine's request cache."""
    data, requests = f.rq_bytes, RequestCache()
    return lambda: read_pdu(data, LIMIT, requests=requests)


def theirs_decode_rq(f: Fixtures) -> Callable[[], object]:
    data = f.rq_bytes

    def run() -> object:
        pdu = A_ASSOCIATE_RQ()
        pdu.decode(data)
        return pdu.to_primitive()

    return run


def ours_negotiate(f: Fixtures) -> Callable[[], object]:
    rq, policy = f.rq, f.policy
    return lambda: negotiate(rq, policy)


def theirs_negotiate(f: Fixtures) -> Callable[[], object]:
    proposed: list[PresentationContext] = f.their_rq_primitive.presentation_context_definition_list
    supported = f.their_supported
    return lambda: negotiate_as_acceptor(proposed, supported)


def ours_encode_ac(f: Fixtures) -> Callable[[], object]:
    ac = f.ac
    return lambda: write_pdu(ac)


def theirs_encode_ac(f: Fixtures) -> Callable[[], object]:
    primitive = f.their_ac_primitive

    def run() -> object:
        pdu = A_ASSOCIATE_AC()
        pdu.from_primitive(primitive)
        return pdu.encode()

    return run


def ours_decode_find(f: Fixtures) -> Callable[[], object]:
    data = f.find_bytes
    accepted = {1}

    def run() -> object:
        parsed = read_pdu(data, 16384)
        assert parsed is not None
        pdu = parsed[0]
        return MessageAssembler(accepted).add(pdu.pdvs)  # type: ignore[union-attr]

    return run


def theirs_decode_find(f: Fixtures) -> Callable[[], object]:
    data = f.find_bytes

    def run() -> object:
        pdu = P_DATA_TF()
        pdu.decode(data)
        message = DIMSEMessage()
        message.decode_msg(pdu.to_primitive())
        return message

    return run


def ours_encode_rsp_pair(f: Fixtures) -> Callable[[], object]:
    uid, response = f.uid, f.response

    def run() -> object:
        pending = CFindRSP(7, uid, FindStatus.PENDING)
        success = CFindRSP(7, uid, FindStatus.SUCCESS)
        return encode_message(1, pending, response, 16382) + encode_message(1, success, None, 16382)

    return run


def theirs_encode_rsp_pair(f: Fixtures) -> Callable[[], object]:
    uid, response = f.uid, f.response

    def one(status: int, identifier: bytes | None) -> bytes:
        primitive = C_FIND()
        primitive.MessageIDBeingRespondedTo = 7
        primitive.AffectedSOPClassUID = uid
        primitive.Status = status
        if identifier is not None:
            primitive.Identifier = BytesIO(identifier)
        message = C_FIND_RSP()
        message.primitive_to_message(primitive)
        return _pynetdicom_message(message, 1, 16382)

    return lambda: one(FindStatus.PENDING, response) + one(FindStatus.SUCCESS, None)


def ours_whole_association(f: Fixtures, *, memoized: bool = False) -> Callable[[], object]:
    """RQ -> AC, one C-FIND answered by a pending and a success, release: the core only.

    Memoized: the same request again, decoded and negotiated once, as the native engine
    does it (its ``RequestCache`` and ``NativeEngine._negotiate``); otherwise neither.
    """
    stream = f.rq_bytes + f.find_bytes + write_pdu(AReleaseRQ())
    policy, uid, response = f.policy, f.uid, f.response
    answers: dict[int, object] = {}
    requests = RequestCache() if memoized else None

    def reply(rq: AAssociateRQ) -> AAssociateAC:
        if not memoized:
            return negotiate(rq, policy).reply  # type: ignore[return-value]
        found = answers.get(id(rq))
        if found is None:
            found = answers[id(rq)] = negotiate(rq, policy).reply
        return found  # type: ignore[return-value]

    def run() -> object:
        conn = Connection(requests=requests)
        conn.connection_made()
        conn.receive_data(stream)
        out = []
        while True:
            event = conn.next_event()
            if isinstance(event, DimseMessage):
                out.append(conn.send_message(1, CFindRSP(7, uid, 0xFF00), response))
                out.append(conn.send_message(1, CFindRSP(7, uid, 0x0000)))
            elif event.__class__.__name__ == "AssociationRequested":
                assert conn.request is not None
                out.append(conn.respond(reply(conn.request)))
            elif event.__class__.__name__ == "ReleaseRequested":
                out.append(conn.release_response())
                return out
            else:
                raise AssertionError(event)

    return run


BENCHMARKS: list[tuple[str, Callable[[Fixtures], Callable[[], object]], Any]] = [
    ("decode A-ASSOCIATE-RQ (4 contexts)", ours_decode_rq, theirs_decode_rq),
    ("decode the same A-ASSOCIATE-RQ again", ours_decode_rq_again, theirs_decode_rq),
    ("negotiate", ours_negotiate, theirs_negotiate),
    ("encode A-ASSOCIATE-AC", ours_encode_ac, theirs_encode_ac),
    ("decode C-FIND-RQ P-DATA", ours_decode_find, theirs_decode_find),
    ("encode C-FIND-RSP pending+success", ours_encode_rsp_pair, theirs_encode_rsp_pair),
    ("whole association through Connection", ours_whole_association, None),
    (
        "the same, request and reply memoized",
        lambda f: ours_whole_association(f, memoized=True),
        None,
    ),
]


def best_us(fn: Callable[[], object], repeat: int) -> float:
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()
    return min(timer.repeat(repeat=repeat, number=number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    fixtures = Fixtures()
    print(f"{'operation':<40} {'rpi_async':>12} {'pynetdicom':>12} {'ratio':>8}")
    for name, ours, theirs in BENCHMARKS:
        mine = best_us(ours(fixtures), args.repeat)
        if theirs is None:
            print(f"{name:<40} {mine:>10.2f}us {'':>12} {'':>8}")
            continue
        other = best_us(theirs(fixtures), args.repeat)
        print(f"{name:<40} {mine:>10.2f}us {other:>10.2f}us {other / mine:>7.1f}x")


if __name__ == "__main__":
    main()
