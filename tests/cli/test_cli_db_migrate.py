"""``rpi-async db migrate``: the one command that migrates (the server never does)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from rpi_async.cli import app
from rpi_async.cli import commands as _commands  # noqa: F401  (registers the commands)
from rpi_async.store import schema
from tests.cli.cli_support import assert_one_line_error
from tests.conftest import make_newer_schema_db


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["db", *args])
    return result.exit_code, result.stdout, result.stderr


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return schema.schema_version(conn)
    finally:
        conn.close()


def test_migrate_an_older_database(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(db, isolation_level=None)  # version 1: the first migration only
    for statement in schema._split(schema._V1):
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    code, out, err = _run("stats", "--db", str(db))
    assert_one_line_error(code, out, err, f"run 'rpi-async db migrate --db {db}'")
    code, out, err = _run("migrate", "--db", str(db))
    assert code == 0, err
    assert out.strip() == f"{db}: schema version 1 -> {schema.SCHEMA_VERSION}"
    assert _version(db) == schema.SCHEMA_VERSION
    code, out, _ = _run("migrate", "--db", str(db))
    assert code == 0
    assert "up to date" in out


def test_migrate_refuses_what_it_cannot_migrate(tmp_path: Path) -> None:
    newer = make_newer_schema_db(tmp_path)
    assert_one_line_error(*_run("migrate", "--db", str(newer)), "schema version 99")
    missing = tmp_path / "missing.sqlite3"
    assert_one_line_error(*_run("migrate", "--db", str(missing)), "does not exist")
    assert not missing.exists()
