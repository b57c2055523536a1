"""Opening a patient database read-only, as the server does: no writes, no migration.

Theory of operation. The server only reads, so it must be able to serve a replica it
cannot write: a file owned by another user, a read-only volume. It opens the database
with ``mode=ro`` and never migrates it (a migration is ``rpi-async db migrate``); a
schema older than this code's is refused with that command in the message.

A database in rollback-journal mode opens read-only anywhere. One in WAL mode (the
writer's mode, so that imports never block readers) needs its ``-shm`` wal-index,
which SQLite creates next to the file if it can (SQLite "Write-Ahead Logging",
Read-Only Databases: since 3.22.0 a read-only WAL database opens "if the -shm and -wal
files already exist or those files can be created or the database is immutable"). In
a writable directory ``mode=ro`` therefore works, and SQLite shares the ``-shm`` with
any writer, so an import may run while the file is served. Where the files cannot be
created (a directory this user cannot write, a read-only mount):

- with no ``-wal`` file (or an empty one) every committed page is in the database
  file itself, and no writer has it open (a WAL writer keeps a ``-wal`` file while
  connected). The file is opened ``immutable=1``: no locks, no ``-shm``. Nothing may
  then write the file in place while it is served; replace it with ``rename()`` and
  SIGHUP (a new file, a new open), as the operator's guide says;
- with a non-empty ``-wal`` and no way to read it (no ``-shm``), the log holds
  committed changes that ``immutable=1`` would silently ignore: the open is refused,
  naming the fix (fold the log into the file where it was written).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from rpi_async.errors import StoreError
from rpi_async.store import schema

log = logging.getLogger("rpi_async.store")

# The database header's file format write/read version bytes (offsets 18, 19): 2 = WAL.
_FORMAT_OFFSET = 18
_WAL_FORMAT = 2


def read_only_uri(path: Path) -> str:
    """The URI to open ``path`` read-only with; raises StoreError naming the file and fix.

    Checks the file (exists, SQLite, a current rpi-async schema) and never writes it.
    """
    schema.check_file(path)
    base = path.resolve().as_uri()
    uri = f"{base}?mode=ro"
    try:
        check_schema(uri, path)
    except sqlite3.OperationalError as exc:
        if not _needs_immutable(path):
            raise StoreError(_cannot_open(path, exc)) from None
        uri = f"{base}?mode=ro&immutable=1"
        try:
            check_schema(uri, path)
        except sqlite3.Error as again:
            raise StoreError(f"cannot open {path} read-only: {again}") from None
        log.info(
            "%s is in WAL mode in a directory this process cannot write: opened as "
            "immutable (replace it with rename() and SIGHUP, never write it in place)",
            path,
        )
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"{path} is not a usable SQLite database: {exc}") from None
    return uri


def check_schema(uri: str, path: Path) -> None:
    """Open ``uri`` once and refuse a schema that is not this code's current one.

    Raises sqlite3.Error when the file cannot be opened, StoreError for its schema.
    """
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    try:
        # The first read opens the file: sqlite3 errors (cannot open) propagate from here.
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        version = schema.check_version(conn, path)  # refuses a newer schema
        if version == schema.SCHEMA_VERSION:
            return
        if version == 0:
            if tables:
                raise StoreError(f"{path} is an SQLite database of another application")
            raise StoreError(
                f"database {path} is empty: fill it with 'rpi-async db import FILE --db "
                f"{path}' or 'rpi-async db demo --db {path}'"
            )
        raise StoreError(
            f"database {path} has schema version {version}, older than this rpi-async's "
            f"({schema.SCHEMA_VERSION}): migrate it with 'rpi-async db migrate --db {path}' "
            "(the server opens databases read-only)"
        )
    finally:
        conn.close()


def is_wal_file(path: Path) -> bool:
    """Whether the database header says WAL mode (bytes 18 and 19 are 2)."""
    try:
        with path.open("rb") as fh:
            fh.seek(_FORMAT_OFFSET)
            return fh.read(2) == bytes([_WAL_FORMAT, _WAL_FORMAT])
    except OSError:
        return False


def _wal_size(path: Path) -> int:
    try:
        return Path(f"{path}-wal").stat().st_size
    except FileNotFoundError:
        return 0


def _directory_writable(path: Path) -> bool:
    return os.access(path.resolve().parent, os.W_OK)


def _needs_immutable(path: Path) -> bool:
    """WAL mode, nothing pending in a ``-wal``, and no way to create the ``-shm``."""
    return (
        is_wal_file(path)
        and _wal_size(path) == 0
        and not Path(f"{path}-shm").exists()
        and not _directory_writable(path)
    )


def _cannot_open(path: Path, exc: sqlite3.Error) -> str:
    if is_wal_file(path) and _wal_size(path) > 0 and not _directory_writable(path):
        return (
            f"cannot open {path} read-only: it is in WAL mode and {path}-wal holds changes "
            f"not yet in the file, which SQLite cannot read without creating {path}-shm in "
            f"a directory this process cannot write; fold the log into the file where it "
            f"was written (close the writer, or PRAGMA wal_checkpoint(TRUNCATE)) and copy "
            f"the file again"
        )
    return f"cannot open {path} read-only: {exc}"
