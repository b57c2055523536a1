"""Serving a rebuilt database without a restart: rename() over the path, then reload
(SIGHUP in production)."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from rpi_async import scu
from rpi_async.dicom.status import FindStatus
from tests.conftest import JANE, UNICODE, make_db, server_settings
from tests.ops.ops_support import OpsServerThread
from tests.serve_process import ServeProcess

pytestmark = pytest.mark.network


def statuses(port: int, patient_id: str) -> list[int]:
    request = scu.build_request(patient_id, "HOSP_A")
    return [r.status for r in scu.find("127.0.0.1", port, request, timeout=10)]


FOUND = [FindStatus.PENDING, FindStatus.SUCCESS]
ABSENT = [FindStatus.SUCCESS]


def test_reload_serves_the_renamed_file(tmp_path: Path, engine: str) -> None:
    live = make_db(tmp_path / "live.sqlite3", (JANE,))
    thread = OpsServerThread(server_settings(live, engine))
    srv = thread.start()
    try:
        assert statuses(srv.port, "P0001") == FOUND
        assert statuses(srv.port, "P0002") == ABSENT
        new = make_db(tmp_path / "live.sqlite3.new", (UNICODE,))
        os.replace(new, live)
        assert statuses(srv.port, "P0001") == FOUND  # still the file it opened
        assert thread.call(thread.server.reload) is True
        assert statuses(srv.port, "P0001") == ABSENT
        assert statuses(srv.port, "P0002") == FOUND
        broken = tmp_path / "broken"
        broken.write_bytes(b"this is not SQLite" * 100)
        os.replace(broken, live)
        assert thread.call(thread.server.reload) is False  # keeps the previous file
        assert statuses(srv.port, "P0002") == FOUND
    finally:
        thread.stop()


def test_sighup_reopens_the_database(tmp_path: Path) -> None:
    live = make_db(tmp_path / "live.sqlite3", (JANE,))
    server = ServeProcess(["--db", str(live), "--port", "0"])
    try:
        port = server.wait_listening()
        assert statuses(port, "P0001") == FOUND
        os.replace(make_db(tmp_path / "next.sqlite3", (UNICODE,)), live)
        server.proc.send_signal(signal.SIGHUP)
        server.wait_for(re.compile("database reopened"))
        assert statuses(port, "P0001") == ABSENT
        assert statuses(port, "P0002") == FOUND
    finally:
        assert server.stop() == 0
