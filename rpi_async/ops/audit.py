"""The audit trail: one structured record per event, written off the event loop.

Theory of operation. Three kinds of event are audited (IHE ATNA, ITI-20): every answered
query (``QueryAudit``, from the QueryService's hook ``ops.hooks``), the application's
start and stop (``ActivityAudit``) and refused associations (``SecurityAudit``: a calling
AE title or address the access policy refused). ``AuditTrail.submit`` only puts a record
on a bounded queue: the event loop never waits for a disk or a network. One writer
thread takes records off the queue in batches, turns each into its output form and
writes it to every sink:

- ``audit_file``: one JSON object per line, appended with ``O_APPEND`` (one ``write``
  per batch, so several worker processes can share the file);
- ``audit_syslog``: the same JSON as a syslog message, or, with ``audit_atna``, a DICOM
  audit message (PS3.15 A.5.3.10 "Query", built by ``ops.atna``).

Patient IDs are written as ``sha256:`` + HMAC-SHA256 under a secret key unless
``audit_patient_id = "clear"``: the trail can then show that the same patient was
queried again, and an operator who knows an ID can find its records
(``hash_patient_id``), but the file itself names nobody. The key comes from
``audit_secret_file``, or from a per-install file created on first use. Issuer, AE
titles and addresses are not patient data and stay in clear.

If the queue is full (the sinks are slower than the queries) the record is dropped and
counted (``rpi_audit_records_dropped_total``) rather than slowing the service. A syslog
sink with a spool (``audit_spool``, ``ops.spool``) keeps what it cannot send while the
repository is down and sends it, in order, when it answers again (the writer retries
every ``RETRY_INTERVAL`` seconds). ``written`` counts records every sink has delivered;
a spooled record is counted when it is finally sent, one dropped by a full spool as
dropped, and one a sink failed to write as failed.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from platformdirs import user_data_dir

from rpi_async.errors import ConfigError
from rpi_async.ops.spool import Spool
from rpi_async.ops.syslog import SEVERITY_INFO, SEVERITY_NOTICE, SyslogSender

log = logging.getLogger("rpi_async.audit")

QUEUE_SIZE = 10_000
RETRY_INTERVAL = 5.0
BATCH = 256
KEY_FILE_NAME = "audit.key"
HASH_PREFIX = "sha256:"


@dataclass(frozen=True, slots=True)
class QueryAudit:
    """What is known about one answered query. ``patient_id`` is still in clear here."""

    time: float  # seconds since the epoch
    calling_ae: str
    called_ae: str
    peer_address: str
    peer_port: int
    sop: str  # SOP class name: general, breast, cardiac
    sop_class_uid: str
    template: str | None
    patient_id: str | None
    issuer: str | None
    status: int | None  # None: the query was interrupted (timed out, aborted)
    duration: float  # seconds


@dataclass(frozen=True, slots=True)
class ActivityAudit:
    """The application started or stopped (PS3.15 A.5.3.1 Application Activity)."""

    time: float
    started: bool
    ae_title: str


@dataclass(frozen=True, slots=True)
class SecurityAudit:
    """An association refused by the access policy (PS3.15 A.5.3.11 Security Alert)."""

    time: float
    reason: str
    calling_ae: str
    peer_address: str


AuditEvent = QueryAudit | ActivityAudit | SecurityAudit


def default_key_path() -> Path:
    return Path(user_data_dir("rpi-async", appauthor=False)) / KEY_FILE_NAME


def load_or_create_key(path: Path) -> bytes:
    """The HMAC key in ``path`` (hex), created atomically with 32 random bytes if absent."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = _create_key(path)
    except OSError as exc:
        raise ConfigError(f"audit key {path} cannot be read: {exc.strerror}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = text.encode()
    if len(key) < 16:
        raise ConfigError(f"audit key {path} is too short: use at least 16 random bytes")
    with contextlib.suppress(OSError):
        if path.stat().st_mode & 0o077:  # anyone who reads it can test guesses of IDs
            log.warning("audit key %s is readable by other users: chmod 600 it", path)
    return key


def _create_key(path: Path) -> str:
    text = secrets.token_hex(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        try:
            os.link(tmp, path)  # atomic, and fails if another process made it first
        except FileExistsError:
            text = path.read_text().strip()
        finally:
            tmp.unlink()
    except OSError as exc:
        raise ConfigError(f"audit key {path} cannot be created: {exc.strerror}") from None
    log.info("created audit key %s", path)
    return text


def hash_patient_id(key: bytes, patient_id: str) -> str:
    """``sha256:`` + hex HMAC-SHA256 of the patient ID (UTF-8) under ``key``."""
    digest = hmac.new(key, patient_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return HASH_PREFIX + digest


class PatientIdPolicy:
    """Hash (default) or keep patient IDs in clear."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key  # None: in clear

    def __call__(self, patient_id: str | None) -> str | None:
        if patient_id is None or self.key is None:
            return patient_id
        return hash_patient_id(self.key, patient_id)


def _stamp(when: float) -> str:
    return (
        datetime.fromtimestamp(when, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def record_dict(item: AuditEvent, patient_id: str | None) -> dict[str, object]:
    """The JSON form of one record (``patient_id`` already hashed or not)."""
    if isinstance(item, ActivityAudit):
        return {
            "time": _stamp(item.time),
            "event": "application-start" if item.started else "application-stop",
            "ae_title": item.ae_title,
            "pid": os.getpid(),
        }
    if isinstance(item, SecurityAudit):
        return {
            "time": _stamp(item.time),
            "event": "security-alert",
            "reason": item.reason,
            "calling_ae": item.calling_ae,
            "peer": item.peer_address,
        }
    return {
        "time": _stamp(item.time),
        "event": "query",
        "calling_ae": item.calling_ae,
        "called_ae": item.called_ae,
        "peer": item.peer_address,
        "peer_port": item.peer_port,
        "sop": item.sop,
        "template": item.template,
        "patient_id": patient_id,
        "issuer": item.issuer,
        "status": None if item.status is None else f"{item.status:04X}",
        "duration_ms": round(item.duration * 1000, 3),
    }


Batch = Sequence[tuple[AuditEvent, dict[str, object]]]


class AuditSink(Protocol):
    def write(self, batch: Batch) -> int | None:
        """Write or raise; the records of ``batch`` held back (spooled, dropped) or None."""
        ...

    def reopen(self) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """JSON lines appended to a file; ``reopen`` after log rotation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._open()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as exc:
            raise ConfigError(f"audit file {self.path} cannot be opened: {exc.strerror}") from None

    def write(self, batch: Batch) -> None:
        if self._fd is None:
            self._open()
        assert self._fd is not None
        data = "".join(json.dumps(d, ensure_ascii=False) + "\n" for _, d in batch).encode()
        while data:
            written = os.write(self._fd, data)
            data = data[written:]

    def reopen(self) -> None:
        self.close()
        self._open()

    def close(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None


class SyslogSink:
    """Each record as one syslog message: JSON, or a DICOM audit message (ATNA).

    With a ``spool`` a message that cannot be sent is kept there (``ops.spool``), and
    so is every later one until ``flush`` has sent the spool; without, the failure is
    raised (the trail counts the batch as failed).
    """

    def __init__(
        self,
        sender: SyslogSender,
        *,
        atna_source: str | None = None,
        spool: Spool | None = None,
        ae_title: str = "",
    ) -> None:
        self.sender = sender
        self.atna_source = atna_source  # None: JSON messages
        self.spool = spool
        self.ae_title = ae_title  # ours, for Security Alert messages
        self._next_try = 0.0

    @property
    def pending(self) -> int:
        return self.spool.pending if self.spool is not None else 0

    @property
    def dropped(self) -> int:
        return self.spool.dropped if self.spool is not None else 0

    def _message(self, item: AuditEvent, d: dict[str, object]) -> bytes:
        if self.atna_source is None:
            text = json.dumps(d, ensure_ascii=False).encode()
            return self.sender.format(text, severity=SEVERITY_INFO, msgid="rpi-audit")
        from rpi_async.ops.atna import ATNA_MSGID, audit_message

        patient_id = d.get("patient_id")
        xml = audit_message(
            item,
            patient_id if isinstance(patient_id, str) else None,
            source=self.atna_source,
            ae_title=self.ae_title,
        )
        return self.sender.format(xml, severity=SEVERITY_NOTICE, msgid=ATNA_MSGID)

    def write(self, batch: Batch) -> int | None:
        messages = [self._message(item, d) for item, d in batch]
        if self.spool is None:
            for message in messages:
                self.sender.deliver(message)
            return None
        held = 0
        for message in messages:
            if not self.spool.pending:
                try:
                    self.sender.deliver(message)
                    continue
                except OSError as exc:
                    log.error(
                        "audit syslog %s unreachable (%s): spooling to %s",
                        self.sender.target,
                        exc,
                        self.spool.path,
                    )
                    self._next_try = time.monotonic() + RETRY_INTERVAL
            held += 1
            if not self.spool.append(message) and self.spool.dropped in (1, 1000):
                log.error("audit spool %s full: records dropped", self.spool.path)
        return held

    def flush(self) -> int:
        """Send what the spool holds, if it is time to try; how many records went."""
        if self.spool is None or not self.spool.pending or time.monotonic() < self._next_try:
            return 0
        sent = self.spool.drain(self.sender.deliver)
        if self.spool.pending:
            self._next_try = time.monotonic() + RETRY_INTERVAL
        else:
            log.info(
                "audit syslog %s reachable again: %d spooled records sent", self.sender.target, sent
            )
        return sent

    def reopen(self) -> None:
        self.sender.close()

    def close(self) -> None:
        self.sender.close()
        if self.spool is not None:
            self.spool.close()


_STOP = object()
_REOPEN = object()


class AuditTrail:
    """A bounded queue and one writer thread feeding the sinks."""

    def __init__(
        self,
        sinks: Sequence[AuditSink],
        patient_ids: PatientIdPolicy,
        *,
        queue_size: int = QUEUE_SIZE,
    ) -> None:
        self.sinks = list(sinks)
        self.patient_ids = patient_ids
        self.written = 0
        self.dropped = 0
        self.failed = 0
        self._queue: queue.Queue[object] = queue.Queue(queue_size)
        self._thread = threading.Thread(target=self._run, name="rpi-async-audit", daemon=True)
        self._thread.start()

    @property
    def spooled(self) -> int:
        """Records waiting in a spool for their sink."""
        return sum(getattr(sink, "pending", 0) for sink in self.sinks)

    @property
    def dropped_total(self) -> int:
        """Records dropped: queue full, or a spool full."""
        return self.dropped + sum(getattr(sink, "dropped", 0) for sink in self.sinks)

    def submit(self, item: AuditEvent) -> None:
        """Queue one record; never blocks (a full queue drops and counts it)."""
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error("audit queue full: %d records dropped so far", self.dropped)

    def reopen(self) -> None:
        """Reopen the audit file (after rotation) and syslog connections."""
        self._queue.put(_REOPEN)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(_STOP)
        self._thread.join(timeout)
        for sink in self.sinks:
            sink.close()

    def _flush(self) -> None:
        for sink in self.sinks:
            if isinstance(sink, SyslogSink):
                try:
                    self.written += sink.flush()
                except Exception as exc:  # never let the writer thread die
                    log.error("audit spool not sent: %s", exc)

    def _run(self) -> None:
        while True:
            try:
                items = [self._queue.get(timeout=RETRY_INTERVAL if self.spooled else None)]
            except queue.Empty:
                self._flush()
                continue
            with contextlib.suppress(queue.Empty):
                while len(items) < BATCH:
                    items.append(self._queue.get_nowait())
            self._flush()
            batch: list[tuple[AuditEvent, dict[str, object]]] = []
            stop = False
            for item in items:
                if item is _STOP:
                    stop = True
                elif item is _REOPEN:
                    self._write(batch)
                    batch = []
                    for sink in self.sinks:
                        with contextlib.suppress(Exception):
                            sink.reopen()
                elif isinstance(item, QueryAudit):
                    batch.append((item, record_dict(item, self.patient_ids(item.patient_id))))
                elif isinstance(item, ActivityAudit | SecurityAudit):
                    batch.append((item, record_dict(item, None)))
            self._write(batch)
            if stop:
                return

    def _write(self, batch: list[tuple[AuditEvent, dict[str, object]]]) -> None:
        if not batch:
            return
        held = 0  # records some sink did not deliver now
        for sink in self.sinks:
            try:
                held = max(held, sink.write(batch) or 0)
            except Exception as exc:  # a sink failing must not stop the others
                held = len(batch)
                self.failed += len(batch)
                log.error("audit records not written to %s: %s", type(sink).__name__, exc)
        self.written += len(batch) - held
