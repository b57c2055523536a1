"""Build the operations pieces from Settings (kept apart so ``ops`` modules stay small)."""

from __future__ import annotations

import socket
from pathlib import Path

from rpi_async.config import Settings
from rpi_async.ops.audit import (
    AuditSink,
    AuditTrail,
    FileSink,
    PatientIdPolicy,
    SyslogSink,
    default_key_path,
    load_or_create_key,
)
from rpi_async.ops.syslog import SyslogSender, parse_syslog_target


def build_audit(settings: Settings) -> AuditTrail | None:
    """The audit trail the settings ask for, or None. Raises ConfigError."""
    sinks: list[AuditSink] = []
    if settings.audit_file is not None:
        sinks.append(FileSink(Path(settings.audit_file)))
    if settings.audit_syslog:
        sender = SyslogSender(parse_syslog_target(settings.audit_syslog))
        source = settings.audit_source_id or socket.gethostname()
        sinks.append(SyslogSink(sender, atna_source=source if settings.audit_atna else None))
    if not sinks:
        return None
    key = None
    if settings.audit_patient_id == "hash":
        key_path = settings.audit_secret_file or default_key_path()
        key = load_or_create_key(Path(key_path))
    return AuditTrail(sinks, PatientIdPolicy(key))
