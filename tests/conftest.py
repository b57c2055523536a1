"""Shared fixtures: a small patient database and a running server per engine."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvloop

from rpi_async.config import Settings
from rpi_async.config.settings import ENGINES
from rpi_async.dicom.codes import Code
from rpi_async.server import Server
from rpi_async.service.stats import ServerStats
from rpi_async.sr.prerender import prerender
from rpi_async.store.model import Fact, PatientRecord, Section
from rpi_async.store.schema import connect_writer
from rpi_async.store.writer import write_patients

YEAR = Code("a", "UCUM", "year")
LEFT_BREAST = Code("80248007", "SCT", "Left breast")
AUNT = Code("25211005", "SCT", "Aunt")

JANE = PatientRecord(
    patient_id="P0001",
    issuer="HOSP_A",
    name="Doe^Jane",
    birth_date="19770315",
    sex="F",
    facts=(
        Fact(
            Section.GYNECOLOGICAL,
            concept=Code("111519", "DCM", "Age at First Full Term Pregnancy"),
            number=28,
            unit=YEAR,
        ),
        Fact(
            Section.GYNECOLOGICAL,
            concept=Code("11977-6", "LN", "Para"),
            number=2,
            unit=Code("{1}", "UCUM", "no units"),
        ),
        Fact(
            Section.PROCEDURE,
            code=Code("287572003", "SCT", "Cyst aspiration"),
            laterality=LEFT_BREAST,
            start="20200604",
        ),
        Fact(
            Section.RISK_FACTOR,
            code=Code("111559", "DCM", "Weak family history of breast cancer"),
            modifier=AUNT,
        ),
        Fact(
            Section.CARDIAC_CONCERN,
            code=Code("161501007", "SCT", "History of hypertension"),
            start="20150101",
        ),
    ),
)
DUP_A = PatientRecord(patient_id="DUP", issuer="ISSUER_A", name="Smith^Ann", sex="F")
DUP_B = PatientRecord(patient_id="DUP", issuer="ISSUER_B", name="Smith^Bob", sex="M")
UNICODE = PatientRecord(patient_id="P0002", issuer="HOSP_A", name="Müller^Jürgen", sex="M")
SAMPLE_RECORDS = (JANE, DUP_A, DUP_B, UNICODE)


def make_newer_schema_db(tmp_path: Path) -> Path:
    """A store whose schema version (99) is newer than this code knows."""
    path = tmp_path / "future.sqlite3"
    connect_writer(path, create=True).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    return path


def make_db(path: Path, records: tuple[PatientRecord, ...] = SAMPLE_RECORDS) -> Path:
    """A store holding ``records``, with their stored answers (as the ``db`` commands do)."""
    conn = connect_writer(path, create=True)
    try:
        write_patients(conn, records)
        prerender(conn, path, workers=1)
    finally:
        conn.close()
    return path


@pytest.fixture
def sample_db(tmp_path: Path) -> Path:
    return make_db(tmp_path / "sample.sqlite3")


@dataclass
class RunningServer:
    host: str
    port: int
    stats: ServerStats
    settings: Settings


class ServerThread:
    """A Server on its own event loop in a background thread, as in production."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._loop = uvloop.new_event_loop()
        self._server: Server | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="test-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:
            self._error = exc
            self._started.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._server = Server(self.settings)
        await self._server.start()
        self._started.set()
        await self._server.wait_closed()

    def start(self) -> RunningServer:
        self._thread.start()
        if not self._started.wait(30):
            raise RuntimeError("server did not start")
        if self._error is not None:
            raise self._error
        assert self._server is not None
        assert self._server.address is not None
        host, port = self._server.address
        return RunningServer(host, port, self._server.stats, self.settings)

    def stop(self) -> None:
        if self._server is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._server.stop)
        self._thread.join(30)
        assert not self._thread.is_alive(), "server did not stop"


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def server_settings(db: Path, engine: str, **changes: object) -> Settings:
    base = Settings(
        db=db,
        host="127.0.0.1",
        port=0,
        engine=engine,
        max_associations=128,
        max_associations_per_peer=0,  # every test client is 127.0.0.1
        acse_timeout=10,
        dimse_timeout=10,
        network_timeout=10,
        shutdown_grace=5,
    )
    return base.replace(**changes)


@pytest.fixture
def server(sample_db: Path, engine: str) -> Iterator[RunningServer]:
    thread = ServerThread(server_settings(sample_db, engine))
    running = thread.start()
    try:
        yield running
    finally:
        thread.stop()


def dcmtk(tool: str) -> str | None:
    """The DCMTK binary ``tool`` (pynetdicom installs Python apps of the same names)."""
    candidates = [shutil.which(tool), f"/usr/bin/{tool}"]
    for path in candidates:
        if path is None or not Path(path).exists():
            continue
        out = subprocess.run(
            [path, "--version"], capture_output=True, timeout=30, check=False, text=True
        )
        if "dcmtk" in (out.stdout + out.stderr).lower():
            return path
    return None
