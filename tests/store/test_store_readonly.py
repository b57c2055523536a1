"""A read-only replica is served: no write, no ``-wal``/``-shm`` created, no migration.

"Read-only" must hold for root too, so the server runs as a child process that sees
the database directory through a read-only bind mount (``unshare -m``, where this
machine allows it), or, for a non-root user, in a directory of mode 0555. Where
neither is possible the tests that need it are skipped, saying why.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpi_async import scu
from rpi_async.errors import StoreError
from rpi_async.store import readonly
from rpi_async.store.reader import PatientStore
from tests.conftest import make_db
from tests.serve_process import LISTENING

MOUNT_RO = 'mount --bind -o ro "$0" "$0" && exec "$@"'


@functools.cache
def _can_mount_read_only() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", MOUNT_RO, "/tmp", "test", "!", "-w", "/tmp"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    return probe.returncode == 0


def read_only_view(directory: Path) -> list[str]:
    """A command prefix under which ``directory`` cannot be written; skips if none works."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return []
    if _can_mount_read_only():
        return ["unshare", "-m", "sh", "-c", MOUNT_RO, str(directory)]
    pytest.skip("running as root without permission for a read-only bind mount (unshare -m)")


@pytest.fixture
def replica_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "replica"
    directory.mkdir()
    yield directory
    directory.chmod(0o755)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def _rpi_async(prefix: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, sys.executable, "-m", "rpi_async", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.network
def test_a_wal_database_on_a_read_only_mount_is_served_and_queried(replica_dir: Path) -> None:
    db = make_db(replica_dir / "patients.sqlite3")
    assert readonly.is_wal_file(db)
    assert _files(replica_dir) == ["patients.sqlite3"]
    before = db.read_bytes()
    prefix = read_only_view(replica_dir)
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "rpi_async", "serve", "--db", str(db), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    log: list[str] = []
    try:
        for line in proc.stderr:
            log.append(line)
            if match := LISTENING.search(line):
                break
        else:
            pytest.fail("server exited:\n" + "".join(log))
        port = int(match.group(2))
        responses = scu.find("127.0.0.1", port, scu.build_request("P0001", "HOSP_A"), timeout=10)
        assert [r.status for r in responses] == [0xFF00, 0]
        assert responses[0].identifier is not None
        assert responses[0].identifier.PatientID == "P0001"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, rest = proc.communicate(timeout=30)
    log.append(rest)
    assert proc.returncode == 0, "".join(log)
    assert "opened as immutable" in "".join(log)
    assert _files(replica_dir) == ["patients.sqlite3"]
    assert db.read_bytes() == before


def test_a_rollback_journal_database_opens_read_only(replica_dir: Path) -> None:
    db = make_db(replica_dir / "patients.sqlite3")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    assert not readonly.is_wal_file(db)
    result = _rpi_async(
        read_only_view(replica_dir), "render", "--db", str(db), "--patient-id", "P0001"
    )
    assert result.returncode == 0, result.stderr
    assert "Patient Doe^Jane, ID P0001" in result.stdout
    assert _files(replica_dir) == ["patients.sqlite3"]


def test_pending_wal_changes_that_cannot_be_read_are_refused(replica_dir: Path) -> None:
    db = make_db(replica_dir / "patients.sqlite3")
    writer = sqlite3.connect(db)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("UPDATE patient SET name = 'Changed^Name' WHERE patient_id = 'P0001'")
    writer.commit()
    shutil.copy(db, replica_dir / "copy.sqlite3")  # a copy with its log, without -shm
    shutil.copy(f"{db}-wal", replica_dir / "copy.sqlite3-wal")
    writer.close()
    copy = replica_dir / "copy.sqlite3"
    db.unlink()
    result = _rpi_async(
        read_only_view(replica_dir), "render", "--db", str(copy), "--patient-id", "P0001"
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{copy}-wal holds changes not yet in the file" in lines[0]
    assert "Traceback" not in result.stderr


async def test_an_older_schema_is_refused_untouched(tmp_path: Path) -> None:
    db = make_db(tmp_path / "old.sqlite3")
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match=f"migrate it with 'rpi-async db migrate --db {db}'"):
        await PatientStore.open(db)
    assert db.read_bytes() == before


async def test_an_empty_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite3"
    conn = sqlite3.connect(db)  # a table created and dropped: an SQLite file, no tables
    conn.execute("CREATE TABLE t (x)")
    conn.execute("DROP TABLE t")
    conn.commit()
    conn.close()
    before = db.read_bytes()
    with pytest.raises(StoreError, match="is empty: fill it with 'rpi-async db import"):
        await PatientStore.open(db)
    assert db.read_bytes() == before
