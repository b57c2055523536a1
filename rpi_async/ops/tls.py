"""The server's TLS context: DICOM over TLS (PS3.15 Annex B, BCP 195 profiles).

Theory of operation. With ``tls_cert`` set, every association runs inside TLS; both
engines take the one ``ssl.SSLContext`` built here (pynetdicom wraps each accepted
socket, the native engine hands it to ``loop.create_server``). TLS 1.2 is the minimum,
as the BCP 195 profiles of PS3.15 B.9-B.11 require, with Python's default cipher
choice. With ``tls_ca``, a client certificate is checked against those CAs when
offered; with ``tls_require_client_cert`` it is required (mutual TLS), and a client
without one fails the handshake before any DICOM is exchanged.

``client_context`` is the other side, for the project's own clients (``echo``,
``query``, ``bench``): the server's certificate is verified against ``--tls-ca`` (or
the system's CAs) and must name the host dialled; ``--tls-cert``/``--tls-key`` offer a
client certificate for mutual TLS.
"""

from __future__ import annotations

import ssl
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
    try:
        ctx.load_cert_chain(cert, key)
    except FileNotFoundError as exc:
        raise ConfigError(f"TLS certificate or key not found: {exc.filename}") from None
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"cannot load TLS certificate {cert}: {exc}") from None
    if ca is not None:
        try:
            ctx.load_verify_locations(cafile=ca)
        except FileNotFoundError:
            raise ConfigError(f"TLS CA file {ca} not found") from None
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"cannot load TLS CA file {ca}: {exc}") from None
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
        try:
            ctx.load_verify_locations(cafile=ca)
        except FileNotFoundError:
            raise ConfigError(f"TLS CA file {ca} not found") from None
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"cannot load TLS CA file {ca}: {exc}") from None
    if cert is not None:
        try:
            ctx.load_cert_chain(cert, key)
        except FileNotFoundError as exc:
            raise ConfigError(f"TLS certificate or key not found: {exc.filename}") from None
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"cannot load TLS certificate {cert}: {exc}") from None
    return ctx
