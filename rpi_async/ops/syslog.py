"""Syslog output for the audit trail: message formats and blocking senders.

Theory of operation. Network targets get RFC 5424 messages: ``<PRI>1 TIMESTAMP HOST APP
PROCID MSGID - MSG``, MSG starting with the UTF-8 BOM. Over UDP each message is one
datagram (RFC 5426); over TCP each is framed by octet counting, ``LEN SP MSG`` (RFC 6587
§3.4.1); over TLS (``tls://HOST[:6514]``, RFC 5425, the transport of IHE ATNA ITI-20)
the same frames go inside a TLS connection on which the repository's certificate is
verified and ours offered (mutual TLS, ``ops.setup`` builds the context). A local
socket (``/dev/log``) gets the short form the C library's ``syslog(3)`` sends,
``<PRI>Mmm dd hh:mm:ss APP[PID]: MSG``, which every local daemon parses. DICOM audit
messages use facility 10 (security/authorization) and severity 5 (notice), PRI 85, and
MSGID ``DICOM+RFC3881`` (PS3.15 A.6, A.7).

Senders block; they run in the audit writer's thread, never on the event loop. TCP
reconnects once per message after a failure; a message that still cannot be sent
raises OSError, which the writer counts and logs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import time
from datetime import UTC, datetime

from rpi_async.config.values import SyslogTarget

FACILITY_AUTHPRIV = 10  # security/authorization messages (RFC 5424 Table 1)
SEVERITY_NOTICE = 5
SEVERITY_INFO = 6
BOM = b"\xef\xbb\xbf"
APP_NAME = "rpi-async"
MAX_UDP_MESSAGE = 65000


def rfc5424(
    message: bytes,
    *,
    severity: int,
    msgid: str,
    when: datetime | None = None,
    hostname: str | None = None,
    facility: int = FACILITY_AUTHPRIV,
) -> bytes:
    """One RFC 5424 SYSLOG-MSG with ``message`` as its UTF-8 MSG."""
    when = when or datetime.now(UTC)
    stamp = when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    host = (hostname or socket.gethostname() or "-")[:255].replace(" ", "_")
    header = f"<{facility * 8 + severity}>1 {stamp} {host} {APP_NAME} {os.getpid()} {msgid} -"
    return header.encode("ascii", "replace") + b" " + BOM + message


def local_form(message: bytes, *, severity: int, facility: int = FACILITY_AUTHPRIV) -> bytes:
    """The ``syslog(3)`` form for a local socket such as ``/dev/log``."""
    stamp = time.strftime("%b %d %H:%M:%S", time.localtime())
    return f"<{facility * 8 + severity}>{stamp} {APP_NAME}[{os.getpid()}]: ".encode() + message


def octet_counted(message: bytes) -> bytes:
    """RFC 6587 octet-counting frame: ``LEN SP MSG``."""
    return b"%d " % len(message) + message


class SyslogSender:
    """Sends whole messages to one target. Blocking; use from one thread."""

    def __init__(
        self,
        target: SyslogTarget,
        *,
        timeout: float = 5.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.target = target
        self.timeout = timeout
        self.tls_context = tls_context
        self._sock: socket.socket | None = None

    def format(self, message: bytes, *, severity: int, msgid: str) -> bytes:
        if self.target.transport == "unix":
            return local_form(message, severity=severity)
        return rfc5424(message, severity=severity, msgid=msgid)

    def send(self, message: bytes, *, severity: int = SEVERITY_INFO, msgid: str = "-") -> None:
        self.deliver(self.format(message, severity=severity, msgid=msgid))

    def deliver(self, data: bytes) -> None:
        """Send one message already formatted (``format``); raises OSError on failure."""
        if self.target.transport in ("tcp", "tls"):
            data = octet_counted(data)
        elif self.target.transport == "udp" and len(data) > MAX_UDP_MESSAGE:
            data = data[:MAX_UDP_MESSAGE]  # RFC 5426 §3.2: truncate rather than fragment
        try:
            self._send(data)
        except OSError:
            self.close()
            self._send(data)  # once more on a fresh socket; raises if that fails too

    def _send(self, data: bytes) -> None:
        sock = self._sock or self._connect()
        if self.target.transport in ("tcp", "tls"):
            sock.sendall(data)
        else:
            sock.send(data)

    def _connect(self) -> socket.socket:
        t = self.target
        if t.transport == "unix":
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                sock.connect(t.path)
            except OSError as exc:
                sock.close()
                if exc.errno != errno.EPROTOTYPE:  # a stream socket: connect as one
                    raise
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(t.path)
        else:
            kind = socket.SOCK_DGRAM if t.transport == "udp" else socket.SOCK_STREAM
            family, _, _, _, address = socket.getaddrinfo(t.host, t.port, type=kind)[0]
            sock = socket.socket(family, kind)
            sock.settimeout(self.timeout)
            try:
                sock.connect(address)
                if t.transport == "tls":
                    context = self.tls_context or ssl.create_default_context()
                    sock = context.wrap_socket(sock, server_hostname=t.host)
            except OSError:
                sock.close()
                raise
        self._sock = sock
        return sock

    def close(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
            self._sock = None
