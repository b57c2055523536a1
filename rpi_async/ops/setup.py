"""Build the operations pieces from Settings (kept apart so ``ops`` modules stay small)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from rpi_async.config import Settings
from rpi_async.config.values import parse_syslog_target
from rpi_async.ops.audit import (
    AuditSink,
    AuditTrail,
    FileSink,
    PatientIdPolicy,
    SyslogSink,
    default_key_path,
    load_or_create_key,
)
from rpi_async.ops.spool import Spool
from rpi_async.ops.syslog import SyslogSender
from rpi_async.ops.tls import client_context


def build_audit(settings: Settings) -> AuditTrail | None:
    """The audit trail the settings ask for, or None. Raises ConfigError."""
    sinks: list[AuditSink] = []
    if settings.audit_file is not None:
        sinks.append(FileSink(Path(settings.audit_file)))
    if settings.audit_syslog:
        target = parse_syslog_target(settings.audit_syslog)
        context = _syslog_tls_context(settings) if target.transport == "tls" else None
        sender = SyslogSender(target, tls_context=context)
        source = settings.audit_source_id or socket.gethostname()
        spool = None
        if settings.audit_spool is not None:
            spool = Spool(Path(settings.audit_spool), settings.audit_spool_mib << 20)
        sinks.append(
            SyslogSink(
                sender,
                atna_source=source if settings.audit_atna else None,
                spool=spool,
                ae_title=settings.ae_title,
            )
        )
    if not sinks:
        return None
    key = None
    if settings.audit_patient_id == "hash":
        key_path = settings.audit_secret_file or default_key_path()
        key = load_or_create_key(Path(key_path))
    return AuditTrail(sinks, PatientIdPolicy(key))


def _syslog_tls_context(settings: Settings) -> ssl.SSLContext:
    """Syslog over TLS (RFC 5425): the repository's certificate checked against
    ``audit_syslog_ca`` (or the system's CAs); ours, ``tls_cert``/``tls_key``, offered
    when set (IHE ATNA node authentication uses the node's one certificate)."""
    ca = settings.audit_syslog_ca
    cert = settings.tls_cert
    key = settings.tls_key if cert is not None else None
    return client_context(
        Path(ca) if ca else None, Path(cert) if cert else None, Path(key) if key else None
    )
