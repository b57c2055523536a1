"""The audit trail: hashing, the key file, JSON lines, syslog framing, ATNA XML, and
records for real queries over loopback."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from pydicom.filereader import read_dataset

from rpi_async import scu
from rpi_async.config.values import parse_syslog_target
from rpi_async.errors import ConfigError
from rpi_async.ops.atna import query_message
from rpi_async.ops.audit import (
    AuditTrail,
    FileSink,
    PatientIdPolicy,
    QueryAudit,
    SyslogSink,
    hash_patient_id,
    load_or_create_key,
)
from rpi_async.ops.syslog import BOM, SyslogSender
from tests.conftest import server_settings
from tests.ops.ops_support import OpsServerThread

KEY = bytes(range(32))


def record(patient_id: str | None = "P0001", status: int | None = 0xFF00) -> QueryAudit:
    return QueryAudit(
        time=time.time(),
        calling_ae="MODALITY1",
        called_ae="RPI_SCP",
        peer_address="127.0.0.1",
        peer_port=40000,
        sop="general",
        sop_class_uid="1.2.840.10008.5.1.4.37.1",
        template="9007",
        patient_id=patient_id,
        issuer="HOSP_A",
        status=status,
        duration=0.0012,
    )


def test_patient_id_hash_is_keyed_and_stable() -> None:
    first = hash_patient_id(KEY, "P0001")
    assert first.startswith("sha256:")
    assert len(first) == len("sha256:") + 64
    assert first == hash_patient_id(KEY, "P0001")
    assert first != hash_patient_id(KEY, "P0002")
    assert first != hash_patient_id(bytes(32), "P0001")
    assert PatientIdPolicy(None)("P0001") == "P0001"  # audit_patient_id = "clear"
    assert PatientIdPolicy(KEY)(None) is None


def test_key_file_created_once_private(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.key"
    key = load_or_create_key(path)
    assert len(key) == 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(path) == key
    assert list(path.parent.iterdir()) == [path]  # no temporary left behind
    short = tmp_path / "short.key"
    short.write_text("abcd\n")
    with pytest.raises(ConfigError, match="too short"):
        load_or_create_key(short)


def test_world_readable_key_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "rpi_async.audit")
    path = tmp_path / "audit.key"
    load_or_create_key(path)
    assert not caplog.records
    path.chmod(0o644)
    load_or_create_key(path)
    assert "readable by other users" in caplog.text


def test_file_sink_writes_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    trail = AuditTrail([FileSink(path)], PatientIdPolicy(KEY))
    trail.submit(record())
    trail.submit(record(status=None))
    trail.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 2
    first = lines[0]
    assert first["patient_id"] == hash_patient_id(KEY, "P0001")
    assert (first["calling_ae"], first["peer"], first["sop"]) == (
        "MODALITY1",
        "127.0.0.1",
        "general",
    )
    assert (first["template"], first["status"], first["issuer"]) == ("9007", "FF00", "HOSP_A")
    assert first["duration_ms"] == pytest.approx(1.2)
    assert first["time"].endswith("Z")
    assert lines[1]["status"] is None
    assert "P0001" not in path.read_text()
    assert (trail.written, trail.dropped, trail.failed) == (2, 0, 0)


def test_full_queue_drops_and_counts() -> None:
    class Blocked:
        def __init__(self) -> None:
            self.writing = threading.Event()
            self.release = threading.Event()

        def write(self, batch: object) -> None:
            self.writing.set()
            self.release.wait(10)

        def reopen(self) -> None: ...

        def close(self) -> None: ...

    sink = Blocked()
    trail = AuditTrail([sink], PatientIdPolicy(KEY), queue_size=2)
    trail.submit(record())
    assert sink.writing.wait(10)  # the writer holds that one, blocked in the sink
    for _ in range(10):
        trail.submit(record())
    assert trail.dropped == 8  # the queue takes two
    sink.release.set()
    trail.close()
    assert trail.written == 3


def test_atna_message_structure() -> None:
    xml = query_message(record(), hash_patient_id(KEY, "P0001"), source_id="NODE1")
    assert xml.startswith(b"<?xml")
    root = ET.fromstring(xml)
    assert root.tag == "AuditMessage"
    event = root.find("EventIdentification")
    assert event is not None
    assert event.get("EventActionCode") == "E"
    assert event.get("EventOutcomeIndicator") == "0"
    event_id = event.find("EventID")
    assert event_id is not None
    assert (event_id.get("csd-code"), event_id.get("codeSystemName")) == ("110112", "DCM")
    roles = {
        p.get("UserIsRequestor"): p.find("RoleIDCode").get("csd-code")  # type: ignore[union-attr]
        for p in root.findall("ActiveParticipant")
    }
    assert roles == {"true": "110153", "false": "110152"}
    requestor = next(
        p for p in root.findall("ActiveParticipant") if p.get("UserIsRequestor") == "true"
    )
    assert (requestor.get("UserID"), requestor.get("NetworkAccessPointID")) == (
        "MODALITY1",
        "127.0.0.1",
    )
    source = root.find("AuditSourceIdentification")
    assert source is not None
    assert source.get("AuditSourceID") == "NODE1"
    obj = root.find("ParticipantObjectIdentification")
    assert obj is not None
    assert obj.get("ParticipantObjectID") == "1.2.840.10008.5.1.4.37.1"
    assert (obj.get("ParticipantObjectTypeCode"), obj.get("ParticipantObjectTypeCodeRole")) == (
        "2",
        "3",
    )
    id_type = obj.find("ParticipantObjectIDTypeCode")
    assert id_type is not None
    assert id_type.get("csd-code") == "110181"
    query = obj.find("ParticipantObjectQuery")
    assert query is not None
    assert query.text is not None
    ds = read_dataset(BytesIO(base64.b64decode(query.text)), False, True)
    assert "sha256:" + ds.PatientID == hash_patient_id(KEY, "P0001")
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "9007"
    detail = obj.find("ParticipantObjectDetail")
    assert detail is not None
    assert detail.get("type") == "TransferSyntax"
    assert base64.b64decode(detail.get("value") or "") == b"1.2.840.10008.1.2.1"


def test_atna_outcome_for_failures() -> None:
    for status, expected in ((0xA900, "4"), (0xA700, "8"), (None, "8"), (0x0000, "0")):
        root = ET.fromstring(query_message(record(status=status), None))
        event = root.find("EventIdentification")
        assert event is not None
        assert event.get("EventOutcomeIndicator") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("udp://127.0.0.1:5514", ("udp", "127.0.0.1", 5514, "")),
        ("tcp://logs.example:6000", ("tcp", "logs.example", 6000, "")),
        ("udp://[::1]", ("udp", "::1", 514, "")),
        ("/dev/log", ("unix", "", 0, "/dev/log")),
        ("unix:///run/syslog", ("unix", "", 0, "/run/syslog")),
    ],
)
def test_syslog_targets(text: str, expected: tuple[str, str, int, str]) -> None:
    t = parse_syslog_target(text)
    assert (t.transport, t.host, t.port, t.path) == expected


@pytest.mark.parametrize(
    "text", ["http://x", "udp://", "tcp://h:port", "udp://h:70000", "unix:rel"]
)
def test_bad_syslog_targets(text: str) -> None:
    with pytest.raises(ValueError, match=r"\S"):
        parse_syslog_target(text)


@pytest.fixture
def udp_listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    yield sock
    sock.close()


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    sock.settimeout(10)
    yield sock
    sock.close()


def test_json_over_udp_syslog(udp_listener: socket.socket) -> None:
    port = udp_listener.getsockname()[1]
    sender = SyslogSender(parse_syslog_target(f"udp://127.0.0.1:{port}"))
    trail = AuditTrail([SyslogSink(sender)], PatientIdPolicy(KEY))
    trail.submit(record())
    data = udp_listener.recv(65535)
    trail.close()
    header, _, message = data.partition(BOM)
    fields = header.decode().split(" ")
    assert fields[0] == "<86>1"  # facility 10 (authpriv), severity 6 (info), RFC 5424
    assert fields[3:7] == ["rpi-async", str(os.getpid()), "rpi-audit", "-"]
    assert json.loads(message)["patient_id"] == hash_patient_id(KEY, "P0001")


def test_atna_over_tcp_syslog_with_octet_counting(tcp_listener: socket.socket) -> None:
    port = tcp_listener.getsockname()[1]
    sender = SyslogSender(parse_syslog_target(f"tcp://127.0.0.1:{port}"))
    trail = AuditTrail([SyslogSink(sender, atna_source="NODE1")], PatientIdPolicy(KEY))
    trail.submit(record())
    trail.submit(record(patient_id="P0002"))
    conn, _ = tcp_listener.accept()
    conn.settimeout(10)
    received = b""
    messages: list[bytes] = []
    with conn:
        while len(messages) < 2:
            chunk = conn.recv(65536)
            assert chunk, "sender closed early"
            received += chunk
            while b" " in received:
                length, _, rest = received.partition(b" ")
                if len(rest) < int(length):
                    break
                messages.append(rest[: int(length)])
                received = rest[int(length) :]
    trail.close()
    for message in messages:
        header, _, xml = message.partition(BOM)
        fields = header.decode().split(" ")
        assert fields[0] == "<85>1"  # facility 10, severity 5 (notice): PS3.15 A.6/A.7
        assert fields[5] == "DICOM+RFC3881"
        root = ET.fromstring(xml)
        event_id = root.find("EventIdentification/EventID")
        assert event_id is not None
        assert event_id.get("csd-code") == "110112"


def test_json_to_a_local_syslog_socket(tmp_path: Path) -> None:
    path = tmp_path / "log.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as server:
        server.bind(str(path))
        server.settimeout(10)
        sender = SyslogSender(parse_syslog_target(str(path)))
        trail = AuditTrail([SyslogSink(sender)], PatientIdPolicy(None))
        trail.submit(record())
        data = server.recv(65535)
        trail.close()
    prefix, _, message = data.partition(b": ")
    assert prefix.startswith(b"<86>")
    assert prefix.endswith(f"rpi-async[{os.getpid()}]".encode())
    assert json.loads(message)["patient_id"] == "P0001"  # audit_patient_id = "clear"


@pytest.mark.network
def test_records_for_real_queries(sample_db: Path, engine: str, tmp_path: Path) -> None:
    audit = tmp_path / "audit.jsonl"
    key_file = tmp_path / "audit.key"
    settings = server_settings(sample_db, engine, audit_file=audit, audit_secret_file=key_file)
    thread = OpsServerThread(settings)
    srv = thread.start()
    try:
        scu.find(srv.host, srv.port, scu.build_request("P0001", "HOSP_A"), timeout=10)
        scu.find(srv.host, srv.port, scu.build_request("NOBODY", template="9000"), timeout=10)
        scu.echo(srv.host, srv.port, timeout=10)  # no query, no record
    finally:
        thread.stop()  # closes the trail: everything queued is written
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    assert records[0]["event"] == "application-start"
    assert records[-1]["event"] == "application-stop"
    assert records[0]["ae_title"] == "RPI_SCP"
    lines = records[1:-1]
    key = load_or_create_key(key_file)
    assert [(r["patient_id"], r["template"], r["status"]) for r in lines] == [
        (hash_patient_id(key, "P0001"), "9007", "FF00"),
        (hash_patient_id(key, "NOBODY"), "9000", "0000"),
    ]
    for line in lines:
        assert (line["calling_ae"], line["called_ae"], line["peer"]) == (
            "RPI_SCU",
            "RPI_SCP",
            "127.0.0.1",
        )
        assert line["sop"] == "general"
        assert line["duration_ms"] >= 0
    assert "P0001" not in audit.read_text()


@pytest.mark.network
def test_audit_settings_open_the_trail(sample_db: Path, engine: str, tmp_path: Path) -> None:
    settings = server_settings(
        sample_db,
        engine,
        audit_file=tmp_path / "audit.jsonl",
        audit_secret_file=tmp_path / "audit.key",
    )
    thread = OpsServerThread(settings)
    thread.start()
    try:
        assert thread.server.audit is not None
        assert thread.server.monitor.audit is thread.server.audit
        assert (tmp_path / "audit.key").exists()
    finally:
        thread.stop()
