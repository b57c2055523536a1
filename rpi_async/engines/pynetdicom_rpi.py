"""pynetdicom's RPI Query service class, with its final Success sent without a data set.

pynetdicom's ``RelevantPatientInformationQueryServiceClass.SCP`` sends the Pending
response with the identifier and then re-sends the same response primitive with Status
0000, so the final Success carries the identifier again (Command Data Set Type "present"
and a second copy of the data set). PS3.4 Q.2.1.1.4 gives the final Success no
identifier. This subclass hands the service class a DIMSE provider that drops the data set
from responses whose status is not Pending; everything else is pynetdicom's.
"""

from __future__ import annotations

from typing import Any

from pynetdicom import sop_class
from pynetdicom.dimse import DIMSEServiceProvider
from pynetdicom.service_class import RelevantPatientInformationQueryServiceClass

from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import RPI_SOP_CLASSES


class _NoDataSetOnFinal:
    """A DIMSE provider view whose ``send_msg`` strips the identifier from final responses."""

    def __init__(self, dimse: DIMSEServiceProvider) -> None:
        self._dimse = dimse

    def send_msg(self, primitive: Any, context_id: int) -> None:
        status = getattr(primitive, "Status", None)
        if status is not None and status != FindStatus.PENDING:
            primitive.Identifier = None
        self._dimse.send_msg(primitive, context_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dimse, name)


class RpiQueryServiceClass(RelevantPatientInformationQueryServiceClass):
    @property
    def dimse(self) -> DIMSEServiceProvider:
        return _NoDataSetOnFinal(self.assoc.dimse)  # type: ignore[return-value]


def install() -> None:
    """Make pynetdicom use ``RpiQueryServiceClass`` for the three RPI SOP classes."""
    registry: dict[str, Any] = sop_class._SERVICE_CLASSES
    for uid in RPI_SOP_CLASSES:
        registry[uid.value] = RpiQueryServiceClass
