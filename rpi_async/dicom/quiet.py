"""pynetdicom and pydicom made quiet about patient data, for the server and the clients."""

from __future__ import annotations

import logging
import warnings

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


def pydicom_warnings_as_errors() -> None:
    """In the server: pydicom's warnings raise, and its log is kept to errors.

    pydicom reading a malformed identifier only warns (a log line and a UserWarning, e.g.
    "Expected explicit VR, but found implicit VR") and goes on with what it guessed. As
    an error, the request is answered C000 (the identifier cannot be parsed), as the test
    suite (which turns every warning into an error) checks, and no line is left that a
    peer could repeat at will."""
    logging.getLogger("pydicom").setLevel(logging.ERROR)
    warnings.filterwarnings("error", category=UserWarning, module=r"pydicom(\.|$)")
