"""A small RPI Query and Verification SCU on pynetdicom (``rpi-async query`` / ``echo``).

An AE title or port pynetdicom would refuse with a traceback is a ``BadScuArgument``,
before any connection. Every other failure is an ``AssociationFailed`` whose message
says what happened, because "it did not work" has different fixes: a host name that
does not resolve, nothing listening (connection refused), no answer at all (timeout), a
DICOM-over-TLS port, a rejection (with its PS3.8 reason), an A-ABORT, or a connection
closed without one. pynetdicom reports some of these only in its log, so ``_PeerWatch``
listens to its logger (errors only, nothing printed) and to the PDUs received while we
associate. A TLS server answers our A-ASSOCIATE-RQ with a TLS record (0x15 alert, 0x16
handshake) or, as Python's ``ssl`` does, just resets the connection; after a hang-up
without an answer, a short second connection tries a TLS handshake to tell which.

With ``tls`` (an ``ssl.SSLContext``, ``ops.tls.client_context``) the association runs
over TLS (PS3.15 Annex B). pynetdicom reports a failed handshake only as a failed
connection, so after any failure a short second connection repeats the handshake by
itself and says what failed: the server's certificate (not trusted, wrong name), ours
(refused by the server: a TLS 1.3 server says so only after the handshake, so one
byte is read), a server that does not speak TLS, or a timeout.
"""

from __future__ import annotations

import logging
import socket
import ssl
from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from rpi_async import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from rpi_async.config.settings import is_ae_title
from rpi_async.dicom.quiet import silence_pynetdicom
from rpi_async.dicom.uids import SopClass
from rpi_async.errors import RpiError
from rpi_async.ul.codes import REJECT_REASONS


class AssociationFailed(RpiError):
    """Could not connect, or the peer rejected or aborted the association."""


class BadScuArgument(RpiError):
    """An AE title or port that cannot be sent (checked before any connection)."""


A_ABORT_PDU = 0x07
TLS_FIRST_BYTES = (0x15, 0x16)  # TLS record types: alert, handshake


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


def check_arguments(host: str, port: int, aec: str, aet: str) -> None:
    """Raise BadScuArgument for a value pynetdicom would refuse with a traceback."""
    if not 1 <= port <= 65535:
        raise BadScuArgument(f"invalid port {port}: a TCP port is 1-65535")
    for flag, title in (("--aec", aec), ("--aet", aet)):
        if not is_ae_title(title):
            raise BadScuArgument(
                f"invalid AE title {title!r} ({flag}): 1-16 characters, not all spaces, "
                "no backslash or control characters"
            )
    if not host:
        raise BadScuArgument("no host given")


def _resolve(host: str, port: int) -> None:
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) else "not a valid host name"
        raise AssociationFailed(f"cannot resolve host {host!r}: {why}") from None


class _PeerWatch(logging.Handler):
    """What pynetdicom saw while associating: its error log lines and PDU types received."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []
        self.pdu_types: list[int] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def on_pdu(self, event: evt.Event) -> None:
        pdu_type = getattr(event.pdu, "pdu_type", None)
        if isinstance(pdu_type, int):
            self.pdu_types.append(pdu_type)

    def said(self, fragment: str) -> str | None:
        """The first pynetdicom error line containing ``fragment``."""
        return next((m for m in self.messages if fragment in m), None)

    def __enter__(self) -> _PeerWatch:
        logging.getLogger("pynetdicom").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("pynetdicom").removeHandler(self)


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


def _connect_failure(watch: _PeerWatch, peer: str, timeout: float) -> AssociationFailed:
    line = watch.said("TCP Initialisation Error")
    why = line.split(":", 1)[1].strip() if line else ""
    if "refused" in why.lower():
        return AssociationFailed(f"connection refused by {peer} (nothing listens on that port)")
    if "timed out" in why.lower():
        return AssociationFailed(f"cannot connect to {peer}: no answer within {timeout:g} s")
    return AssociationFailed(f"cannot connect to {peer}" + (f": {why}" if why else ""))


def _unknown_pdu_type(watch: _PeerWatch) -> int | None:
    line = watch.said("Unknown PDU type received")
    if line is None:
        return None
    try:
        return int(line.rsplit("'0x", 1)[1].rstrip("'"), 16)
    except (IndexError, ValueError):
        return None


def _associate(
    ae: AE, host: str, port: int, aec: str, timeout: float, tls: ssl.SSLContext | None
) -> object:
    _resolve(host, port)
    peer = f"{host}:{port}"
    opened: list[bool] = []

    def on_open(event: evt.Event) -> None:
        opened.append(True)
        sock = getattr(getattr(event.assoc.dul, "socket", None), "socket", None)
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    with _PeerWatch() as watch:
        assoc = ae.associate(
            host,
            port,
            ae_title=aec,
            evt_handlers=[(evt.EVT_CONN_OPEN, on_open), (evt.EVT_PDU_RECV, watch.on_pdu)],
            tls_args=(tls, host) if tls is not None else None,
        )
    if assoc.is_established:
        return assoc
    _close_socket(assoc)
    if tls is not None and not assoc.is_rejected:
        failure = _tls_failure(host, port, tls, timeout)
        if failure is not None:
            raise failure
    if not opened:
        raise _connect_failure(watch, peer, timeout)
    if assoc.is_rejected:
        prim = assoc.acceptor.primitive
        key = (getattr(prim, "result_source", 0), getattr(prim, "diagnostic", 0))
        reason = REJECT_REASONS.get(key, f"source {key[0]} reason {key[1]}")
        raise AssociationFailed(f"association rejected by {peer}: {reason}")
    if _unknown_pdu_type(watch) in TLS_FIRST_BYTES:
        raise _tls_port(peer)
    if watch.said("ACSE timeout reached"):
        raise AssociationFailed(
            f"no answer from {peer} to the association request within {timeout:g} s"
        )
    if A_ABORT_PDU in watch.pdu_types:
        raise AssociationFailed(f"association aborted by {peer} (A-ABORT)")
    if (pdu_type := _unknown_pdu_type(watch)) is not None:
        raise AssociationFailed(f"{peer} does not speak DICOM (first byte 0x{pdu_type:02X})")
    if _speaks_tls(host, port, timeout):  # many TLS servers just reset a plain connection
        raise _tls_port(peer)
    raise AssociationFailed(
        f"{peer} closed the connection without answering the association request"
    )


def _tls_port(peer: str) -> AssociationFailed:
    return AssociationFailed(
        f"{peer} answered in TLS: it is a DICOM-over-TLS port (use --tls, and --tls-ca for its CA)"
    )


# OpenSSL reasons that mean the server refused or could not check our certificate.
_CLIENT_CERT_ALERTS = ("CERTIFICATE_REQUIRED", "BAD_CERTIFICATE", "UNKNOWN_CA", "CERTIFICATE")
_NOT_TLS = ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER", "PACKET_LENGTH_TOO_LONG")


def _tls_failure(
    host: str, port: int, context: ssl.SSLContext, timeout: float
) -> AssociationFailed | None:
    """What goes wrong in a TLS handshake with the peer; None when it succeeds."""
    peer = f"{host}:{port}"
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except TimeoutError:
        return AssociationFailed(f"cannot connect to {peer}: no answer within {timeout:g} s")
    except ConnectionRefusedError:
        return AssociationFailed(f"connection refused by {peer} (nothing listens on that port)")
    except OSError as exc:
        return AssociationFailed(f"cannot connect to {peer}: {exc.strerror or exc}")
    refused = AssociationFailed(
        f"TLS handshake with {peer} failed: the server refused our certificate, or wants "
        "one (--tls-cert/--tls-key)"
    )
    try:
        with raw, context.wrap_socket(raw, server_hostname=host) as tls:
            tls.settimeout(min(timeout, 1.0))  # TLS 1.3: a refused client certificate
            try:  # ends the connection (with an alert, or none) after the handshake
                tls.recv(1)
            except TimeoutError:
                return None  # the server waits for DICOM: the handshake worked
            return refused
    except ssl.SSLCertVerificationError as exc:
        return AssociationFailed(
            f"TLS handshake with {peer} failed: its certificate is not trusted "
            f"({exc.verify_message}); give its CA with --tls-ca"
        )
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc)
        if any(r in reason.upper() for r in _NOT_TLS):
            return AssociationFailed(f"{peer} does not speak TLS (handshake failed: {reason})")
        if "ALERT" in reason.upper() and any(r in reason.upper() for r in _CLIENT_CERT_ALERTS):
            return refused
        return AssociationFailed(f"TLS handshake with {peer} failed: {reason}")
    except TimeoutError:
        return AssociationFailed(f"TLS handshake with {peer}: no answer within {timeout:g} s")
    except OSError:
        return AssociationFailed(
            f"{peer} closed the connection during the TLS handshake "
            "(a plain DICOM port, or it refused us)"
        )


def _speaks_tls(host: str, port: int, timeout: float) -> bool:
    """Whether a TLS handshake with the peer gets TLS back (a second, short connection)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        raw = socket.create_connection((host, port), timeout=min(timeout, 5.0))
    except OSError:
        return False
    with raw:
        try:
            with context.wrap_socket(raw, server_hostname=host):
                return True  # the handshake completed
        except ssl.SSLError as exc:
            return "ALERT" in str(exc.reason).upper()  # a TLS alert is TLS too
        except OSError:
            return False


def _close_socket(assoc: object) -> None:
    """pynetdicom leaves the socket of a failed association request open."""
    raw = getattr(getattr(getattr(assoc, "dul", None), "socket", None), "socket", None)
    if isinstance(raw, socket.socket):
        raw.close()


def _no_response(what: str, assoc: object, peer: str, timeout: float) -> AssociationFailed:
    if getattr(assoc, "is_aborted", False):
        return AssociationFailed(f"no {what} response: association aborted by {peer}")
    if getattr(assoc, "is_established", False):
        return AssociationFailed(f"no {what} response from {peer} within {timeout:g} s")
    return AssociationFailed(f"no {what} response: {peer} closed the connection")


def find(
    host: str,
    port: int,
    identifier: Dataset,
    *,
    sop_class: str = SopClass.GENERAL_RPI_QUERY,
    aec: str = "RPI_SCP",
    aet: str = "RPI_SCU",
    timeout: float = 30.0,
    tls: ssl.SSLContext | None = None,
) -> list[FindResponse]:
    """Send one C-FIND and return every response, the final one last."""
    check_arguments(host, port, aec, aet)
    ae = _make_ae(aet, str(sop_class), timeout)
    assoc = _associate(ae, host, port, aec, timeout, tls)
    responses: list[FindResponse] = []
    try:
        for status, ds in assoc.send_c_find(identifier, str(sop_class)):  # type: ignore[attr-defined]
            if not status:
                raise _no_response("C-FIND", assoc, f"{host}:{port}", timeout)
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
    host: str,
    port: int,
    *,
    aec: str = "RPI_SCP",
    aet: str = "RPI_SCU",
    timeout: float = 30.0,
    tls: ssl.SSLContext | None = None,
) -> int:
    """Send one C-ECHO; return its status."""
    check_arguments(host, port, aec, aet)
    ae = _make_ae(aet, SopClass.VERIFICATION, timeout)
    assoc = _associate(ae, host, port, aec, timeout, tls)
    try:
        status = assoc.send_c_echo()  # type: ignore[attr-defined]
        if not status:
            raise _no_response("C-ECHO", assoc, f"{host}:{port}", timeout)
        return int(status.Status)
    finally:
        if assoc.is_established:  # type: ignore[attr-defined]
            assoc.release()  # type: ignore[attr-defined]
