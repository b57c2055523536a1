"""Helpers for the network tests: real pynetdicom SCUs talking to 127.0.0.1."""

from __future__ import annotations

from pynetdicom import AE
from pynetdicom.association import Association

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
