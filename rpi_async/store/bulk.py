"""Journal mode for the first load of a brand-new database.

Theory of operation: the store runs in WAL mode so that readers never block the writer
(schema.connect_writer). During a bulk load, WAL writes every page twice: once to the
write-ahead log and once more when the log is checkpointed into the database. A database
that this process has just created has no readers yet, and every page a load writes lies
beyond its original end, which a rollback journal need not copy. So for that case the load
runs with ``journal_mode=DELETE`` (still one atomic transaction: a failure rolls back)
and the database is switched back to WAL afterwards. SQLite refuses to leave WAL while
another connection has the file open; the switch is then skipped and the load simply
runs in WAL mode.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger("rpi_async.store")


def _mode(conn: sqlite3.Connection, mode: str | None = None) -> str:
    """The journal mode, after trying to set it to ``mode`` (which may not succeed)."""
    if mode is not None:
        try:
            conn.execute(f"PRAGMA journal_mode = {mode}").fetchone()
        except sqlite3.OperationalError as exc:  # another connection holds the file
            log.debug("journal mode stays: %s", exc)
    return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()


@contextmanager
def first_load(conn: sqlite3.Connection, *, new_database: bool) -> Iterator[None]:
    """Run a bulk load into a database created for it with a rollback journal."""
    if not new_database or _mode(conn) != "wal" or _mode(conn, "DELETE") != "delete":
        yield
        return
    try:
        yield
    finally:
        if _mode(conn, "WAL") != "wal":
            # Still a working database; the next writer connection switches it to WAL.
            log.warning("could not switch the new database back to WAL mode")
