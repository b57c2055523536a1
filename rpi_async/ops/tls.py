"""The server's TLS context: DICOM over TLS (PS3.15 Annex B, BCP 195 profiles).

Theory of operation. With ``tls_cert`` set, every association runs inside TLS; both
engines take the one ``ssl.SSLContext`` built here (pynetdicom wraps each accepted
socket, the native engine hands it to ``loop.create_server``). TLS 1.2 is the minimum,
as the BCP 195 profiles of PS3.15 B.9-B.11 require, with Python's default cipher
choice. With ``tls_ca``, a client certificate is checked against those CAs when
offered; with ``tls_require_client_cert`` it is required (mutual TLS), and a client
without one fails the handshake before any DICOM is exchanged.

``report_handshake_failures`` makes a server context tell the audit trail (a Security
Alert) about every failed handshake: a client certificate missing or not trusted, a
client that does not speak TLS. It swaps in subclasses of ``ssl.SSLObject`` (what
asyncio's and uvloop's TLS transports drive) and ``ssl.SSLSocket`` (what the pynetdicom
engine's threads use) whose ``do_handshake`` reports a failure before raising it; the
engines need no change. The peer's address is known on a socket; a TLS transport's
memory BIO does not know it, so those alerts name no address.

``client_context`` is the other side, for the project's own clients (``echo``,
``query``, ``bench``): the server's certificate is verified against ``--tls-ca`` (or
the system's CAs) and must name the host dialled; ``--tls-cert``/``--tls-key`` offer a
client certificate for mutual TLS.
"""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Callable
from pathlib import Path

from rpi_async.errors import ConfigError


def server_context(
    cert: Path,
    key: Path | None = None,
    *,
    ca: Path | None = None,
    require_client_cert: bool = False,
) -> ssl.SSLContext:
    """A server-side context; ConfigError naming the file when one cannot be loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _load_cert(ctx, cert, key)
    if ca is not None:
        _load_ca(ctx, ca)
        ctx.verify_mode = ssl.CERT_REQUIRED if require_client_cert else ssl.CERT_OPTIONAL
    return ctx


def client_context(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext:
    """A client-side context; ConfigError naming the file when one cannot be loaded."""
    if key is not None and cert is None:
        raise ConfigError("--tls-key needs --tls-cert")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca is None:
        ctx.load_default_certs()
    else:
        _load_ca(ctx, ca)
    if cert is not None:
        _load_cert(ctx, cert, key)
    return ctx


def _load_cert(ctx: ssl.SSLContext, cert: Path, key: Path | None) -> None:
    try:
        ctx.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError(f"TLS certificate or key not found: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot load TLS certificate {cert}: {exc}") from None


def _load_ca(ctx: ssl.SSLContext, ca: Path) -> None:
    try:
        ctx.load_verify_locations(cafile=ca)
    except FileNotFoundError:
        raise ConfigError(f"TLS CA file {ca} not found") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot load TLS CA file {ca}: {exc}") from None


HandshakeFailure = Callable[[str, str], None]  # (peer address or "", reason)


def _failure_reason(exc: ssl.SSLError) -> str | None:
    """The reason of a failed handshake; None when it only needs more data."""
    if isinstance(exc, ssl.SSLWantReadError | ssl.SSLWantWriteError):
        return None
    return str(exc.reason or exc)


def report_handshake_failures(ctx: ssl.SSLContext, on_failure: HandshakeFailure) -> None:
    """Have every failed server-side handshake on ``ctx`` reported to ``on_failure``."""

    class AuditedObject(ssl.SSLObject):
        def do_handshake(self) -> None:
            try:
                super().do_handshake()
            except ssl.SSLError as exc:
                reason = _failure_reason(exc)
                if reason is not None:
                    on_failure("", reason)
                raise

    class AuditedSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            try:
                super().do_handshake(block)
            except ssl.SSLError as exc:
                reason = _failure_reason(exc)
                if reason is not None:
                    peer = ""
                    with contextlib.suppress(OSError):
                        peer = str(self.getpeername()[0])
                    on_failure(peer, reason)
                raise

    ctx.sslobject_class = AuditedObject
    ctx.sslsocket_class = AuditedSocket
