"""Test peers for the Upper Layer core.

The requestor side is built on pynetdicom's own PDU and DIMSE classes, so that what
our acceptor reads was encoded by an independent implementation, and what it writes
is checked by one. ``Acceptor`` is the small deterministic application that answers
every event the way an engine would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom.dimse_messages import C_CANCEL_RQ, C_ECHO_RQ, C_FIND_RQ, DIMSEMessage
from pynetdicom.dimse_primitives import C_CANCEL, C_ECHO, C_FIND
from pynetdicom.dsutils import encode
from pynetdicom.pdu import A_ASSOCIATE_AC, A_ASSOCIATE_RQ, P_DATA_TF
from pynetdicom.pdu_primitives import (
    A_ASSOCIATE,
    ImplementationClassUIDNotification,
    ImplementationVersionNameNotification,
    MaximumLengthNotification,
    SCP_SCU_RoleSelectionNegotiation,
    UserIdentityNegotiation,
)
from pynetdicom.presentation import PresentationContext

from rpi_async.dicom.status import EchoStatus, FindStatus
from rpi_async.dicom.uids import SopClass, TransferSyntax
from rpi_async.ul import (
    NEED_DATA,
    AcceptorPolicy,
    AssociationRequested,
    Connection,
    ConnectionClosed,
    DimseMessage,
    Event,
    ProtocolAborted,
    ReleaseRequested,
    negotiate,
)
from rpi_async.ul.commands import CEchoRQ, CEchoRSP, CFindRQ, CFindRSP

IMPLICIT = str(TransferSyntax.IMPLICIT_VR_LE)
EXPLICIT = str(TransferSyntax.EXPLICIT_VR_LE)
GENERAL = str(SopClass.GENERAL_RPI_QUERY)
VERIFICATION = str(SopClass.VERIFICATION)
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
POLICY = AcceptorPolicy("RPI_SCP")
MAX_EVENTS = 10_000

Context = tuple[int, str, Sequence[str]]
DEFAULT_CONTEXTS: tuple[Context, ...] = (
    (1, GENERAL, (IMPLICIT, EXPLICIT)),
    (3, VERIFICATION, (IMPLICIT,)),
)


def associate_rq(
    *,
    called: str = "RPI_SCP",
    calling: str = "FINDSCU",
    contexts: Iterable[Context] = DEFAULT_CONTEXTS,
    max_length: int = 16382,
    roles: Iterable[tuple[str, bool, bool]] = (),
    identity: tuple[int, bool, bytes, bytes] | None = None,
) -> bytes:
    """An A-ASSOCIATE-RQ encoded by pynetdicom."""
    primitive = A_ASSOCIATE()
    primitive.application_context_name = "1.2.840.10008.3.1.1.1"
    primitive.called_ae_title = called
    primitive.calling_ae_title = calling
    items: list[Any] = []
    for context_id, abstract, syntaxes in contexts:
        context = PresentationContext()
        context.context_id = context_id
        context.abstract_syntax = abstract
        context.transfer_syntax = list(syntaxes)
        items.append(context)
    primitive.presentation_context_definition_list = items
    maximum = MaximumLengthNotification()
    maximum.maximum_length_received = max_length
    class_uid = ImplementationClassUIDNotification()
    class_uid.implementation_class_uid = "1.2.826.0.1.3680043.9.3811.2.0.0"
    version = ImplementationVersionNameNotification()
    version.implementation_version_name = "PYNETDICOM_200"
    user_info: list[Any] = [maximum, class_uid, version]
    for uid, scu, scp in roles:
        role = SCP_SCU_RoleSelectionNegotiation()
        role.sop_class_uid = uid
        role.scu_role = scu
        role.scp_role = scp
        user_info.append(role)
    if identity is not None:
        user_id = UserIdentityNegotiation()
        user_id.user_identity_type = identity[0]
        user_id.positive_response_requested = identity[1]
        user_id.primary_field = identity[2]
        user_id.secondary_field = identity[3]
        user_info.append(user_id)
    primitive.user_information = user_info
    pdu = A_ASSOCIATE_RQ()
    pdu.from_primitive(primitive)
    return bytes(pdu.encode())


def decode_ac(data: bytes) -> A_ASSOCIATE_AC:
    pdu = A_ASSOCIATE_AC()
    pdu.decode(data)
    return pdu


def identifier(patient_id: str = "P0001") -> bytes:
    """A small RPI query identifier, Implicit VR Little Endian."""
    ds = Dataset()
    ds.PatientName = ""
    ds.PatientID = patient_id
    item = Dataset()
    item.MappingResource = "DCMR"
    item.TemplateIdentifier = "9007"
    ds.ContentTemplateSequence = [item]
    data = encode(ds, True, True)
    assert data is not None
    return data


def _message_bytes(message: DIMSEMessage, context_id: int, max_pdu: int) -> bytes:
    out = []
    for primitive in message.encode_msg(context_id, max_pdu):
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        out.append(pdu.encode())
    return b"".join(out)


def c_find_rq(context_id: int, message_id: int, dataset: bytes, *, max_pdu: int = 16382) -> bytes:
    primitive = C_FIND()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = GENERAL
    primitive.Priority = 2
    primitive.Identifier = BytesIO(dataset)
    message = C_FIND_RQ()
    message.primitive_to_message(primitive)
    return _message_bytes(message, context_id, max_pdu)


def c_echo_rq(context_id: int, message_id: int) -> bytes:
    primitive = C_ECHO()
    primitive.MessageID = message_id
    primitive.AffectedSOPClassUID = VERIFICATION
    message = C_ECHO_RQ()
    message.primitive_to_message(primitive)
    return _message_bytes(message, context_id, 16382)


def c_cancel_rq(context_id: int, message_id: int) -> bytes:
    primitive = C_CANCEL()
    primitive.MessageIDBeingRespondedTo = message_id
    message = C_CANCEL_RQ()
    message.primitive_to_message(primitive)
    return _message_bytes(message, context_id, 16382)


def decode_messages(data: bytes) -> list[DIMSEMessage]:
    """Split ``data`` into P-DATA-TF PDUs and reassemble them with pynetdicom."""
    messages: list[DIMSEMessage] = []
    current = DIMSEMessage()
    offset = 0
    while offset < len(data):
        length = int.from_bytes(data[offset + 2 : offset + 6], "big")
        assert data[offset] == 0x04, f"not a P-DATA-TF: 0x{data[offset]:02X}"
        pdu = P_DATA_TF()
        pdu.decode(data[offset : offset + 6 + length])
        offset += 6 + length
        if current.decode_msg(pdu.to_primitive()):
            messages.append(current)
            current = DIMSEMessage()
    return messages


@dataclass
class Acceptor:
    """A deterministic application on top of ``Connection`` (what an engine does)."""

    policy: AcceptorPolicy = POLICY
    conn: Connection = field(default_factory=Connection)
    events: list[Event] = field(default_factory=list)
    sent: list[bytes] = field(default_factory=list)
    response: bytes = b"\x10\x00\x20\x00\x06\x00\x00\x00P0001 "

    def __post_init__(self) -> None:
        self.conn.connection_made()

    def feed(self, data: bytes) -> None:
        self.conn.receive_data(data)
        self.pump()

    def pump(self) -> None:
        for _ in range(MAX_EVENTS):
            event = self.conn.next_event()
            if event is NEED_DATA:
                return
            self.events.append(event)
            self._handle(event)
            if isinstance(event, ConnectionClosed):
                return
        raise AssertionError("next_event did not settle")

    def close(self) -> None:
        self.conn.connection_lost()
        self.pump()

    @property
    def output(self) -> bytes:
        return b"".join(self.sent)

    def _handle(self, event: Event) -> None:
        conn = self.conn
        if isinstance(event, AssociationRequested):
            self.sent.append(conn.respond(negotiate(event.request, self.policy).reply))
        elif isinstance(event, DimseMessage):
            command = event.command
            if isinstance(command, CEchoRQ):
                reply = CEchoRSP(command.message_id, EchoStatus.SUCCESS)
                self.sent.append(conn.send_message(event.context_id, reply))
            elif isinstance(command, CFindRQ):
                uid = command.affected_sop_class_uid
                pending = CFindRSP(command.message_id, uid, FindStatus.PENDING)
                done = CFindRSP(command.message_id, uid, FindStatus.SUCCESS)
                self.sent.append(conn.send_message(event.context_id, pending, self.response))
                self.sent.append(conn.send_message(event.context_id, done))
        elif isinstance(event, ReleaseRequested):
            self.sent.append(conn.release_response())
        elif isinstance(event, ProtocolAborted):
            self.sent.append(event.data_to_send)
