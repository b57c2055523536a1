"""Audit for ATNA repositories: the spool while the syslog sink is down (nothing lost,
drops counted), syslog over TLS (RFC 5425), Application Activity and Security Alert."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rpi_async import scu
from rpi_async.config.values import parse_syslog_target
from rpi_async.errors import RpiError
from rpi_async.ops import audit as audit_module
from rpi_async.ops.atna import activity_message, security_message
from rpi_async.ops.audit import (
    ActivityAudit,
    AuditTrail,
    PatientIdPolicy,
    SecurityAudit,
    SyslogSink,
)
from rpi_async.ops.spool import Spool
from rpi_async.ops.syslog import BOM, SyslogSender
from rpi_async.ops.tls import client_context
from tests.conftest import server_settings
from tests.ops.ops_certs import make_pki
from tests.ops.ops_support import OpsServerThread
from tests.ops.test_ops_audit import KEY, record


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Collector:
    """A TCP (or TLS) syslog receiver: octet-counted messages, from any connection."""

    def __init__(self, port: int, context: ssl.SSLContext | None = None) -> None:
        self.messages: list[bytes] = []
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.context = context
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            if self.context is not None:
                conn.settimeout(10)
                conn = self.context.wrap_socket(conn, server_side=True)
            conn.settimeout(0.2)
            buf = b""
            with conn:
                while not self.stopped.is_set():
                    try:
                        chunk = conn.recv(65536)
                    except TimeoutError:
                        continue
                    if not chunk:
                        break
                    buf += chunk
                    while b" " in buf:
                        length, _, rest = buf.partition(b" ")
                        if len(rest) < int(length):
                            break
                        self.messages.append(rest[: int(length)])
                        buf = rest[int(length) :]

    def wait(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            assert time.monotonic() < deadline, f"{len(self.messages)} of {count} received"
            time.sleep(0.05)

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(10)
        self.sock.close()


@pytest.fixture
def fast_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_module, "RETRY_INTERVAL", 0.2)


def patient_ids(messages: list[bytes]) -> list[str]:
    return [json.loads(m.partition(BOM)[2])["patient_id"] for m in messages]


def test_spool_keeps_records_while_the_sink_is_down(tmp_path: Path, fast_retry: None) -> None:
    port = free_port()  # nothing listens there yet
    sender = SyslogSender(parse_syslog_target(f"tcp://127.0.0.1:{port}"), timeout=2)
    spool = Spool(tmp_path / "audit.spool", 1 << 20)
    trail = AuditTrail([SyslogSink(sender, spool=spool)], PatientIdPolicy(None))
    collector: Collector | None = None
    try:
        for i in range(20):
            trail.submit(record(patient_id=f"P{i:04d}"))
        deadline = time.monotonic() + 10
        while trail.spooled < 20:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert trail.written == 0  # not counted as written while they wait
        collector = Collector(port)
        for i in range(20, 25):  # records arriving while it comes back go behind the spool
            trail.submit(record(patient_id=f"P{i:04d}"))
        collector.wait(25)
    finally:
        trail.close()
        if collector is not None:
            collector.close()
    assert patient_ids(collector.messages) == [f"P{i:04d}" for i in range(25)]
    assert (trail.written, trail.dropped_total, trail.failed, trail.spooled) == (25, 0, 0, 0)
    assert (tmp_path / "audit.spool").stat().st_size == 0


def test_full_spool_drops_and_counts(tmp_path: Path) -> None:
    sender = SyslogSender(parse_syslog_target(f"tcp://127.0.0.1:{free_port()}"), timeout=2)
    spool = Spool(tmp_path / "audit.spool", 2000)  # room for a few messages only
    trail = AuditTrail([SyslogSink(sender, spool=spool)], PatientIdPolicy(None))
    for _ in range(10):
        trail.submit(record())
    trail.close()
    assert trail.spooled + trail.dropped_total == 10
    assert trail.dropped_total > 0
    assert trail.written == 0


def test_spool_left_by_a_previous_run_is_sent_first(tmp_path: Path, fast_retry: None) -> None:
    port = free_port()
    path = tmp_path / "audit.spool"
    first = AuditTrail(
        [SyslogSink(SyslogSender(parse_syslog_target(f"tcp://127.0.0.1:{port}"), timeout=2),
                    spool=Spool(path, 1 << 20))],
        PatientIdPolicy(None),
    )  # fmt: skip
    first.submit(record(patient_id="OLD"))
    first.close()
    collector = Collector(port)
    try:
        sender = SyslogSender(parse_syslog_target(f"tcp://127.0.0.1:{port}"), timeout=2)
        second = AuditTrail([SyslogSink(sender, spool=Spool(path, 1 << 20))], PatientIdPolicy(None))
        second.submit(record(patient_id="NEW"))
        collector.wait(2)
        second.close()
    finally:
        collector.close()
    assert patient_ids(collector.messages) == ["OLD", "NEW"]


def test_syslog_over_tls(tmp_path: Path) -> None:
    pki = make_pki(tmp_path)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    server.load_verify_locations(cafile=pki.ca)
    server.verify_mode = ssl.CERT_REQUIRED  # mutual TLS, as ATNA node authentication
    port = free_port()
    collector = Collector(port, server)
    try:
        context = client_context(pki.ca, pki.client_cert, pki.client_key)
        target = parse_syslog_target(f"tls://127.0.0.1:{port}")
        assert target.transport == "tls"
        sender = SyslogSender(target, tls_context=context)
        trail = AuditTrail([SyslogSink(sender, atna_source="NODE1")], PatientIdPolicy(KEY))
        trail.submit(ActivityAudit(time.time(), True, "RPI_SCP"))
        collector.wait(1)
        trail.close()
    finally:
        collector.close()
    xml = collector.messages[0].partition(BOM)[2]
    event = ET.fromstring(xml).find("EventIdentification/EventTypeCode")
    assert event is not None
    assert event.get("csd-code") == "110120"
    assert parse_syslog_target("tls://arr.example").port == 6514


def test_activity_and_security_messages() -> None:
    stop = ET.fromstring(activity_message(ActivityAudit(time.time(), False, "RPI_SCP")))
    assert stop.find("EventIdentification/EventID").get("csd-code") == "110100"  # type: ignore[union-attr]
    assert stop.find("EventIdentification/EventTypeCode").get("csd-code") == "110121"  # type: ignore[union-attr]
    assert stop.find("ActiveParticipant/RoleIDCode").get("csd-code") == "110150"  # type: ignore[union-attr]
    alert = SecurityAudit(time.time(), "calling AE refused", "STRANGER", "192.0.2.7")
    root = ET.fromstring(security_message(alert, ae_title="RPI_SCP", source_id="NODE1"))
    event = root.find("EventIdentification")
    assert event is not None
    assert event.get("EventOutcomeIndicator") == "4"
    assert event.find("EventID").get("csd-code") == "110113"  # type: ignore[union-attr]
    assert event.find("EventTypeCode").get("csd-code") == "110126"  # type: ignore[union-attr]
    peers = [p.get("NetworkAccessPointID") for p in root.findall("ActiveParticipant")]
    assert "192.0.2.7" in peers
    subject = root.find("ParticipantObjectIdentification")
    assert subject is not None
    assert subject.get("ParticipantObjectID") == "192.0.2.7"


@pytest.mark.network
def test_refused_association_is_a_security_alert(sample_db: Path, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    settings = server_settings(
        sample_db,
        "native",
        audit_file=audit,
        audit_secret_file=tmp_path / "key",
        allowed_calling_aes=("MODALITY1",),
    )
    thread = OpsServerThread(settings)
    srv = thread.start()
    try:
        with pytest.raises(RpiError, match="rejected"):
            scu.echo(srv.host, srv.port, aet="STRANGER", timeout=10)
    finally:
        thread.stop()
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    events = [r["event"] for r in records]
    assert events == ["application-start", "security-alert", "application-stop"]
    assert (records[1]["calling_ae"], records[1]["peer"]) == ("STRANGER", "127.0.0.1")


@pytest.mark.network
def test_failed_tls_handshake_is_a_security_alert(
    sample_db: Path, tmp_path: Path, engine: str
) -> None:
    pki = make_pki(tmp_path)
    audit = tmp_path / "audit.jsonl"
    settings = server_settings(
        sample_db,
        engine,
        audit_file=audit,
        audit_secret_file=tmp_path / "key",
        tls_cert=pki.server_cert,
        tls_key=pki.server_key,
        tls_ca=pki.ca,
        tls_require_client_cert=True,
    )
    thread = OpsServerThread(settings)
    srv = thread.start()
    try:
        with pytest.raises(RpiError, match="refused our certificate"):
            scu.echo(srv.host, srv.port, timeout=5, tls=client_context(pki.ca))
    finally:
        thread.stop()
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    alerts = [r for r in records if r["event"] == "security-alert"]
    assert alerts, records
    assert all(r["reason"].startswith("TLS handshake failed") for r in alerts)
    assert "CERTIFICATE" in alerts[0]["reason"].upper()
    if engine == "pynetdicom":  # a socket knows its peer; a TLS transport's BIO does not
        assert alerts[0]["peer"] == "127.0.0.1"
