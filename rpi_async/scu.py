"""A small RPI Query and Verification SCU on pynetdicom (``rpi-async query`` / ``echo``)."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from rpi_async import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from rpi_async.dicom.quiet import silence_pynetdicom
from rpi_async.dicom.uids import SopClass
from rpi_async.errors import RpiError
from rpi_async.ul.codes import REJECT_REASONS


class AssociationFailed(RpiError):
    """Could not connect, or the peer rejected or aborted the association."""


@dataclass
class FindResponse:
    status: int
    identifier: Dataset | None = None
    error_comment: str | None = None
    offending_elements: list[int] = field(default_factory=list)


def build_request(patient_id: str, issuer: str | None = None, template: str = "9007") -> Dataset:
    """The request identifier of PS3.4 Q.2.1.1.3, asking for the usual return keys."""
    ds = Dataset()
    ds.PatientName = ""
    ds.PatientID = patient_id
    if issuer is not None:
        ds.IssuerOfPatientID = issuer
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    item = Dataset()
    item.MappingResource = "DCMR"
    item.TemplateIdentifier = template
    ds.ContentTemplateSequence = [item]
    ds.ObservationDateTime = ""
    ds.ValueType = ""
    ds.ConceptNameCodeSequence = []
    ds.ContentSequence = []
    return ds


def _make_ae(aet: str, sop_class: str, timeout: float) -> AE:
    silence_pynetdicom()
    ae = AE(ae_title=aet)
    ae.implementation_class_uid = IMPLEMENTATION_CLASS_UID
    ae.implementation_version_name = IMPLEMENTATION_VERSION_NAME
    ae.add_requested_context(sop_class)
    ae.acse_timeout = timeout
    ae.dimse_timeout = timeout
    ae.network_timeout = timeout
    ae.connection_timeout = timeout
    return ae


def _associate(ae: AE, host: str, port: int, aec: str) -> object:
    opened: list[bool] = []

    def on_open(event: evt.Event) -> None:
        opened.append(True)
        sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    assoc = ae.associate(host, port, ae_title=aec, evt_handlers=[(evt.EVT_CONN_OPEN, on_open)])
    if assoc.is_established:
        return assoc
    if not opened:
        raise AssociationFailed(f"cannot connect to {host}:{port}")
    if assoc.is_rejected:
        prim = assoc.acceptor.primitive
        key = (getattr(prim, "result_source", 0), getattr(prim, "diagnostic", 0))
        reason = REJECT_REASONS.get(key, f"source {key[0]} reason {key[1]}")
        raise AssociationFailed(f"association rejected by {host}:{port}: {reason}")
    if assoc.is_aborted:
        raise AssociationFailed(f"association aborted by {host}:{port}")
    raise AssociationFailed(f"no answer to the association request from {host}:{port}")


def find(
    host: str,
    port: int,
    identifier: Dataset,
    *,
    sop_class: str = SopClass.GENERAL_RPI_QUERY,
    aec: str = "RPI_SCP",
    aet: str = "RPI_SCU",
    timeout: float = 30.0,
) -> list[FindResponse]:
    """Send one C-FIND and return every response, the final one last."""
    ae = _make_ae(aet, str(sop_class), timeout)
    assoc = _associate(ae, host, port, aec)
    responses: list[FindResponse] = []
    try:
        for status, ds in assoc.send_c_find(identifier, str(sop_class)):  # type: ignore[attr-defined]
            if not status:
                raise AssociationFailed("no response: timed out, aborted or invalid")
            offending = status.get("OffendingElement")
            if offending is not None and not isinstance(offending, list | tuple):
                offending = [offending]
            responses.append(
                FindResponse(
                    int(status.Status),
                    ds,
                    status.get("ErrorComment"),
                    [int(t) for t in offending] if offending is not None else [],
                )
            )
    finally:
        if assoc.is_established:  # type: ignore[attr-defined]
            assoc.release()  # type: ignore[attr-defined]
    return responses


def echo(
    host: str, port: int, *, aec: str = "RPI_SCP", aet: str = "RPI_SCU", timeout: float = 30.0
) -> int:
    """Send one C-ECHO; return its status."""
    ae = _make_ae(aet, SopClass.VERIFICATION, timeout)
    assoc = _associate(ae, host, port, aec)
    try:
        status = assoc.send_c_echo()  # type: ignore[attr-defined]
        if not status:
            raise AssociationFailed("no C-ECHO response: timed out, aborted or invalid")
        return int(status.Status)
    finally:
        if assoc.is_established:  # type: ignore[attr-defined]
            assoc.release()  # type: ignore[attr-defined]
