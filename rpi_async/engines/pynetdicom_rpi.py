"""pynetdicom's RPI Query service class, answering with the QueryService's bytes.

pynetdicom looks up the service class of each DIMSE request by its SOP class UID in
``pynetdicom.sop_class._SERVICE_CLASSES`` (``uid_to_service_class``) and runs that
class's ``SCP(request, context)`` in the association's thread. That table is the
mechanism pynetdicom offers for replacing a service (``register_uid`` fills the same
table for new UIDs): ``install`` puts ``RpiQueryServiceClass`` there for the three RPI
SOP classes.

Its ``SCP`` still triggers ``EVT_C_FIND``, so the engine's handler decides, but the
handler (marked with ``answer_handler``; the table is process-wide, and an unmarked
handler of another AE gets pynetdicom's own behaviour) returns the service's ``Answer``
instead of yielding Datasets: the request
identifier reaches the service as the bytes received (``C_FIND.Identifier`` is a
``BytesIO`` of the encoded data set) and each response goes out as bytes: its command
set encoded by ``ul.commands``, command and identifier fragmented into P-DATA-TF PDUs
for the peer's maximum length by ``ul.dimse`` (as the native engine sends them), queued
for pynetdicom's DUL as ``pynetdicom_reactors.EncodedPData``, which the DUL sends as they
are. pydicom never decodes or encodes an identifier on this path, nor a response's
command set.

The final Success follows a Pending without a data set (Command Data Set Type 0101H,
PS3.4 Q.2.1.1.4), which pynetdicom's own encoder gets wrong. A failure carries Error
Comment and Offending Element when the service gave them. A C-FIND on a presentation
context of another abstract syntax (or with no or an undecodable Affected SOP Class UID)
is refused with 0122H (SOP class not supported, PS3.7 C.4.1.1.4) by
``refuse_other_sop_class``, which the engine's association calls before pynetdicom looks
for a service class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

from pynetdicom import evt, sop_class
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.presentation import PresentationContext
from pynetdicom.service_class import RelevantPatientInformationQueryServiceClass

from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import RPI_SOP_CLASSES
from rpi_async.engines.pynetdicom_reactors import send_encoded
from rpi_async.service.rules import Answer
from rpi_async.ul.commands import CFindRSP, is_uid
from rpi_async.ul.dimse import encode_message

SOP_CLASS_NOT_SUPPORTED = 0x0122  # PS3.7 C.4.1.1.4
ERROR_COMMENT_LENGTH = 64  # LO


class RpiQueryServiceClass(RelevantPatientInformationQueryServiceClass):
    """The RPI Query SCP: the EVT_C_FIND handler returns an ``Answer``; bytes go out."""

    def SCP(self, req: C_FIND, context: PresentationContext) -> None:
        handler = self.assoc.get_handlers(evt.EVT_C_FIND)[0]
        if not getattr(handler, "returns_answer", False):
            # Another pynetdicom AE in this process: pynetdicom's own behaviour.
            super().SCP(req, context)
            return
        cx_id = cast(int, context.context_id)
        answer = evt.trigger(
            self.assoc,
            evt.EVT_C_FIND,
            {"request": req, "context": context.as_tuple, "_is_cancelled": self.is_cancelled},
        )
        if not isinstance(answer, Answer):  # no handler bound
            self._send(req, cx_id, FindStatus.UNABLE_TO_PROCESS)
            return
        if not self.assoc.is_established:  # aborted meanwhile
            return
        if answer.status is FindStatus.PENDING and answer.identifier is not None:
            self._send(req, cx_id, FindStatus.PENDING, identifier=answer.identifier)
            self._send(req, cx_id, FindStatus.SUCCESS)
            return
        self._send(
            req,
            cx_id,
            answer.status,
            comment=answer.error_comment,
            offending=answer.offending_elements,
        )

    def _send(
        self,
        req: C_FIND,
        cx_id: int,
        status: int,
        *,
        identifier: bytes | None = None,
        comment: str | None = None,
        offending: tuple[int, ...] = (),
        sop_class: str | None = None,
    ) -> None:
        rsp = CFindRSP(
            message_id_being_responded_to=int(cast(int, req.MessageID)),
            affected_sop_class_uid=str(sop_class or req.AffectedSOPClassUID),
            status=int(status),
            offending_element=tuple(offending),
            error_comment=comment[:ERROR_COMMENT_LENGTH] if comment else None,
        )
        peer_max = int(self.assoc.requestor.maximum_length or 0)
        send_encoded(self.assoc, encode_message(cx_id, rsp, identifier, peer_max))


def refuse_other_sop_class(assoc: Association, req: C_FIND, context: PresentationContext) -> bool:
    """0122H for a C-FIND whose Affected SOP Class UID (missing, undecodable or another)
    is not its context's abstract syntax; False when it is (the request goes on)."""
    requested = str(req.AffectedSOPClassUID or "")
    abstract = str(context.abstract_syntax)
    if requested == abstract:
        return False
    named = requested if is_uid(requested) else abstract  # one the response can carry
    service = RpiQueryServiceClass(assoc)
    service._send(req, cast(int, context.context_id), SOP_CLASS_NOT_SUPPORTED, sop_class=named)
    return True


F = TypeVar("F", bound=Callable[..., Answer])


def answer_handler(handler: F) -> F:
    """Mark an EVT_C_FIND handler as returning an ``Answer`` (the table is process-wide:
    pynetdicom AEs whose handlers are not marked keep pynetdicom's behaviour)."""
    handler.returns_answer = True  # type: ignore[attr-defined]
    return handler


def install() -> None:
    """Make pynetdicom use ``RpiQueryServiceClass`` for the three RPI SOP classes."""
    registry: dict[str, Any] = sop_class._SERVICE_CLASSES
    for uid in RPI_SOP_CLASSES:
        registry[uid.value] = RpiQueryServiceClass
