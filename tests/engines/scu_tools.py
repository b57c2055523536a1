"""Helpers for the network tests: real pynetdicom SCUs talking to 127.0.0.1."""

from __future__ import annotations

from io import BytesIO

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_FIND

from rpi_async.dicom.uids import SopClass


def associate(
    host: str,
    port: int,
    *,
    contexts: tuple[str, ...] = (SopClass.GENERAL_RPI_QUERY,),
    aec: str = "RPI_SCP",
    aet: str = "TEST_SCU",
) -> Association:
    ae = AE(ae_title=aet)
    for uid in contexts:
        ae.add_requested_context(uid)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 10
    return ae.associate(host, port, ae_title=aec)


def send_raw_find(
    assoc: Association, identifier: bytes, sop_class: str = SopClass.GENERAL_RPI_QUERY
) -> list[tuple[int, Dataset]]:
    """Send a C-FIND whose identifier is arbitrary bytes; return (status, rsp) pairs."""
    context = next(c for c in assoc.accepted_contexts if c.abstract_syntax == sop_class)
    req = C_FIND()
    req.MessageID = 7
    req.AffectedSOPClassUID = sop_class
    req.Priority = 2
    req.Identifier = BytesIO(identifier)
    assert context.context_id is not None
    assoc.dimse.send_msg(req, context.context_id)
    out: list[tuple[int, Dataset]] = []
    while True:
        _, rsp = assoc.dimse.get_msg(block=True)
        assert isinstance(rsp, C_FIND), "no C-FIND response"
        assert rsp.Status is not None
        status = int(rsp.Status)
        out.append((status, rsp.Identifier if isinstance(rsp.Identifier, Dataset) else Dataset()))
        out[-1][1].ErrorComment = rsp.ErrorComment or ""
        if status not in (0xFF00, 0xFF01):
            return out
