"""DICOM audit messages (PS3.15 A.5) for an ATNA audit record repository (IHE ITI-20).

Three messages: "Query" (A.5.3.10) for each answered query, "Application Activity"
(A.5.3.1) when the server starts and stops, and "Security Alert" (A.5.3.11) when the
access policy refuses an association. The Query message:

Theory of operation. Each answered RPI query becomes one ``AuditMessage`` in the XML
schema of PS3.15 A.5.1 (the DICOM form of RFC 3881, coded values as ``csd-code`` /
``codeSystemName`` / ``originalText``):

- EventIdentification: EventID (110112, DCM, "Query"), EventActionCode ``E`` (Execute),
  EventDateTime, EventOutcomeIndicator 0 (success), 4 (minor failure: a failure status
  such as A900 or C000), 8 (serious failure: A700 out of resources, or no answer);
- ActiveParticipant, the process that issued the query: the calling AE title, its IP
  address (NetworkAccessPointTypeCode 2), UserIsRequestor true, RoleIDCode (110153,
  DCM, "Source Role ID");
- ActiveParticipant, the process that responds: our AE title and process ID,
  UserIsRequestor false, RoleIDCode (110152, DCM, "Destination Role ID");
- AuditSourceIdentification: ``audit_source_id`` (host name by default), type 4
  (application server process tier);
- ParticipantObjectIdentification, "SOP Queried and the Query": type 2 (system object),
  role 3 (report), ParticipantObjectIDTypeCode (110181, DCM, "SOP Class UID"), the SOP
  class UID, and ParticipantObjectQuery, the base64 of the query's keys encoded in
  Explicit VR Little Endian, named in ParticipantObjectDetail ``TransferSyntax``.

Application Activity: EventID (110100, DCM, "Application Activity"), EventTypeCode
(110120 "Application Start" or 110121 "Application Stop"), outcome 0, our process as the
ActiveParticipant with RoleIDCode (110150, DCM, "Application"). Security Alert: EventID
(110113, DCM, "Security Alert"), EventTypeCode (110126, DCM, "Node Authentication"),
outcome 4 with the reason as EventOutcomeDescription, our process as the reporting
participant, the refused peer (calling AE title, IP address) as the requestor, and the
peer's address as the alert subject, ParticipantObjectIDTypeCode (110182, DCM, "Node ID");
it is sent for associations the access policy refused and for failed TLS handshakes
(where the address is unknown, the address attributes and the subject are left out).

The query object carries the Patient ID as the audit trail is configured: hashed by
default (the 64 hex digits of the HMAC, without the ``sha256:`` prefix, so the value
fits the LO VR), in clear only with ``audit_patient_id = "clear"``.
"""

from __future__ import annotations

import base64
import os
import socket
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from rpi_async.dicom.status import FindStatus
from rpi_async.ops.audit import (
    HASH_PREFIX,
    ActivityAudit,
    AuditEvent,
    QueryAudit,
    SecurityAudit,
)

ATNA_MSGID = "DICOM+RFC3881"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"

EVENT_QUERY = ("110112", "DCM", "Query")
ROLE_SOURCE = ("110153", "DCM", "Source Role ID")
ROLE_DESTINATION = ("110152", "DCM", "Destination Role ID")
ID_TYPE_SOP_CLASS = ("110181", "DCM", "SOP Class UID")
SOURCE_TYPE_APPLICATION_SERVER = ("4", "DCM", "Application Server process tier")
EVENT_APPLICATION_ACTIVITY = ("110100", "DCM", "Application Activity")
TYPE_APPLICATION_START = ("110120", "DCM", "Application Start")
TYPE_APPLICATION_STOP = ("110121", "DCM", "Application Stop")
ROLE_APPLICATION = ("110150", "DCM", "Application")
EVENT_SECURITY_ALERT = ("110113", "DCM", "Security Alert")
TYPE_NODE_AUTHENTICATION = ("110126", "DCM", "Node Authentication")
ID_TYPE_NODE = ("110182", "DCM", "Node ID")

OUTCOME_SUCCESS = "0"
OUTCOME_MINOR_FAILURE = "4"
OUTCOME_SERIOUS_FAILURE = "8"
_GOOD = {FindStatus.SUCCESS, FindStatus.PENDING, FindStatus.CANCEL}


def _coded(parent: ET.Element, tag: str, code: tuple[str, str, str]) -> ET.Element:
    return ET.SubElement(
        parent, tag, {"csd-code": code[0], "codeSystemName": code[1], "originalText": code[2]}
    )


def outcome(status: int | None) -> str:
    if status is None or status == FindStatus.OUT_OF_RESOURCES:
        return OUTCOME_SERIOUS_FAILURE
    return OUTCOME_SUCCESS if status in _GOOD else OUTCOME_MINOR_FAILURE


def encoded_query(item: QueryAudit, patient_id: str | None) -> bytes:
    """The query keys we audit, as an Explicit VR Little Endian data set."""
    ds = Dataset()
    # A hashed ID goes in without its "sha256:" prefix: 64 hex digits fit the LO VR.
    ds.PatientID = (patient_id or "").removeprefix(HASH_PREFIX)
    if item.issuer:
        ds.IssuerOfPatientID = item.issuer
    if item.template:
        template = Dataset()
        template.MappingResource = "DCMR"
        template.TemplateIdentifier = item.template
        ds.ContentTemplateSequence = [template]
    out = DicomBytesIO()
    out.is_little_endian = True
    out.is_implicit_VR = False
    write_dataset(out, ds)
    return out.getvalue()


def query_message(item: QueryAudit, patient_id: str | None, *, source_id: str = "") -> bytes:
    """One ``AuditMessage`` for one query, UTF-8 XML with its declaration."""
    root = ET.Element("AuditMessage")
    stamp = datetime.fromtimestamp(item.time, UTC).isoformat(timespec="milliseconds")
    event = ET.SubElement(
        root,
        "EventIdentification",
        {
            "EventActionCode": "E",
            "EventDateTime": stamp.replace("+00:00", "Z"),
            "EventOutcomeIndicator": outcome(item.status),
        },
    )
    _coded(event, "EventID", EVENT_QUERY)
    if item.status is not None and outcome(item.status) != OUTCOME_SUCCESS:
        ET.SubElement(event, "EventOutcomeDescription").text = f"status {item.status:04X}"

    requestor = ET.SubElement(
        root,
        "ActiveParticipant",
        {
            "UserID": item.calling_ae or "-",
            "UserIsRequestor": "true",
            "NetworkAccessPointID": item.peer_address,
            "NetworkAccessPointTypeCode": "2",
        },
    )
    _coded(requestor, "RoleIDCode", ROLE_SOURCE)
    host = socket.gethostname()
    responder = ET.SubElement(
        root,
        "ActiveParticipant",
        {
            "UserID": item.called_ae or "-",
            "AlternativeUserID": str(os.getpid()),
            "UserIsRequestor": "false",
            "NetworkAccessPointID": host,
            "NetworkAccessPointTypeCode": "1",
        },
    )
    _coded(responder, "RoleIDCode", ROLE_DESTINATION)

    source = ET.SubElement(root, "AuditSourceIdentification", {"AuditSourceID": source_id or host})
    _coded(source, "AuditSourceTypeCode", SOURCE_TYPE_APPLICATION_SERVER)

    obj = ET.SubElement(
        root,
        "ParticipantObjectIdentification",
        {
            "ParticipantObjectID": item.sop_class_uid,
            "ParticipantObjectTypeCode": "2",
            "ParticipantObjectTypeCodeRole": "3",
        },
    )
    _coded(obj, "ParticipantObjectIDTypeCode", ID_TYPE_SOP_CLASS)
    ET.SubElement(obj, "ParticipantObjectQuery").text = base64.b64encode(
        encoded_query(item, patient_id)
    ).decode("ascii")
    ET.SubElement(
        obj,
        "ParticipantObjectDetail",
        {
            "type": "TransferSyntax",
            "value": base64.b64encode(EXPLICIT_VR_LITTLE_ENDIAN.encode()).decode("ascii"),
        },
    )
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def _stamp(when: float) -> str:
    return (
        datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _event(
    root: ET.Element,
    when: float,
    event_id: tuple[str, str, str],
    event_type: tuple[str, str, str],
    outcome_code: str,
) -> ET.Element:
    event = ET.SubElement(
        root,
        "EventIdentification",
        {
            "EventActionCode": "E",
            "EventDateTime": _stamp(when),
            "EventOutcomeIndicator": outcome_code,
        },
    )
    _coded(event, "EventID", event_id)
    _coded(event, "EventTypeCode", event_type)
    return event


def _ourselves(root: ET.Element, ae_title: str, role: tuple[str, str, str] | None) -> None:
    participant = ET.SubElement(
        root,
        "ActiveParticipant",
        {
            "UserID": ae_title or "-",
            "AlternativeUserID": str(os.getpid()),
            "UserIsRequestor": "false",
            "NetworkAccessPointID": socket.gethostname(),
            "NetworkAccessPointTypeCode": "1",
        },
    )
    if role is not None:
        _coded(participant, "RoleIDCode", role)


def _source(root: ET.Element, source_id: str) -> None:
    source = ET.SubElement(
        root, "AuditSourceIdentification", {"AuditSourceID": source_id or socket.gethostname()}
    )
    _coded(source, "AuditSourceTypeCode", SOURCE_TYPE_APPLICATION_SERVER)


def activity_message(item: ActivityAudit, *, source_id: str = "") -> bytes:
    """Application Activity (A.5.3.1): this application started or stopped."""
    root = ET.Element("AuditMessage")
    kind = TYPE_APPLICATION_START if item.started else TYPE_APPLICATION_STOP
    _event(root, item.time, EVENT_APPLICATION_ACTIVITY, kind, OUTCOME_SUCCESS)
    _ourselves(root, item.ae_title, ROLE_APPLICATION)
    _source(root, source_id)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def security_message(item: SecurityAudit, *, ae_title: str, source_id: str = "") -> bytes:
    """Security Alert (A.5.3.11): an association the access policy refused."""
    root = ET.Element("AuditMessage")
    event = _event(
        root, item.time, EVENT_SECURITY_ALERT, TYPE_NODE_AUTHENTICATION, OUTCOME_MINOR_FAILURE
    )
    ET.SubElement(event, "EventOutcomeDescription").text = item.reason
    _ourselves(root, ae_title, None)
    peer = {"UserID": item.calling_ae or "-", "UserIsRequestor": "true"}
    if item.peer_address:  # unknown for a TLS handshake that failed on a transport
        peer |= {"NetworkAccessPointID": item.peer_address, "NetworkAccessPointTypeCode": "2"}
    ET.SubElement(root, "ActiveParticipant", peer)
    _source(root, source_id)
    if item.peer_address:
        obj = ET.SubElement(
            root,
            "ParticipantObjectIdentification",
            {"ParticipantObjectID": item.peer_address, "ParticipantObjectTypeCode": "2"},
        )
        _coded(obj, "ParticipantObjectIDTypeCode", ID_TYPE_NODE)
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml


def audit_message(
    item: AuditEvent, patient_id: str | None, *, source: str, ae_title: str = ""
) -> bytes:
    """The DICOM audit message for any audited event."""
    if isinstance(item, ActivityAudit):
        return activity_message(item, source_id=source)
    if isinstance(item, SecurityAudit):
        return security_message(item, ae_title=ae_title, source_id=source)
    return query_message(item, patient_id, source_id=source)
