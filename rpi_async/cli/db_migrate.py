"""``rpi-async db migrate`` and ``db prerender``: bring a database up to date.

The server opens databases read-only and never migrates them (``store.readonly``), so
an older database is migrated here, by a command that is allowed to write.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated

import typer

from rpi_async.cli import fail
from rpi_async.cli.db import db_app, prerender_file, render_stored_answers
from rpi_async.errors import RpiError
from rpi_async.store import schema


def _version(path: Path) -> int:
    schema.check_file(path)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return schema.check_version(conn, path)
    finally:
        conn.close()


@db_app.command("migrate")
def migrate(
    db: Annotated[Path, typer.Option("--db", help="Patient store (SQLite file) to migrate.")],
) -> None:
    """Bring the schema up to date in one transaction (the server never migrates)."""
    try:
        before = _version(db)
        if before == schema.SCHEMA_VERSION:
            typer.echo(f"{db}: schema version {before}, up to date")
            return
        conn = schema.connect_writer(db)  # migrates
        try:
            render_stored_answers(conn, db)
        finally:
            conn.close()
        after = _version(db)
    except RpiError as exc:
        raise fail(str(exc)) from None
    except sqlite3.Error as exc:
        raise fail(f"cannot migrate {db}: {exc}") from None
    typer.echo(f"{db}: schema version {before} -> {after}")


@db_app.command("prerender")
def prerender_(
    db: Annotated[Path, typer.Option("--db", help="Patient store (SQLite file).")],
) -> None:
    """Render every missing or outdated stored answer (after an rpi-async upgrade).

    The server answers a patient without a current stored answer by rendering it live,
    at a higher cost per query; the commands that write render them on their own.
    """
    try:
        if _version(db) != schema.SCHEMA_VERSION:
            raise fail(f"database {db} needs 'rpi-async db migrate --db {db}' first")
    except RpiError as exc:
        raise fail(str(exc)) from None
    count = prerender_file(db)
    typer.echo(f"{db}: {count} stored answers rendered")
