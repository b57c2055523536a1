"""pynetdicom and pydicom made quiet about patient data, for the server and the clients."""

from __future__ import annotations

import pydicom.config
from pynetdicom import _config


def silence_pynetdicom() -> None:
    """Stop pynetdicom logging identifiers (patient data) and per-PDU chatter.

    pydicom's read-time validation is switched off too: its warnings quote element
    values, which may be patient data.
    """
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    _config.LOG_REQUEST_IDENTIFIERS = False
    _config.LOG_RESPONSE_IDENTIFIERS = False
    _config.LOG_HANDLER_LEVEL = "none"
