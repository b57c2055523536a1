"""``rpi-async db ...``: create, fill and inspect the patient store."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from rpi_async.cli import app, fail
from rpi_async.errors import RpiError
from rpi_async.sr import prerender
from rpi_async.store import bulk, demo, demo_check, dicom_import, importer, schema, writer
from rpi_async.store.fhir import codes, load
from rpi_async.store.paths import default_db_path

db_app = typer.Typer(
    help="Create, fill and inspect the patient store (an SQLite file).",
    no_args_is_help=True,
)
app.add_typer(db_app, name="db")

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Patient store (SQLite file). Default for demo and stats: the per-user demo database.",
        show_default=False,
    ),
]


def _db_path(db: Path | None) -> Path:
    return db if db is not None else default_db_path()


def _target_db(db: Path | None, command: str) -> Path:
    """The database an import writes into: named, never the demo database by default."""
    if db is None:
        raise fail(f"'rpi-async db {command}' needs --db, the database to write into")
    return db


def _stderr() -> Console:
    return Console(stderr=True)


@contextmanager
def _progress(label: str, *, counts: bool) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (only when stderr is a terminal)."""
    console = _stderr()
    columns = [
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn() if counts else TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(
        *columns, console=console, transient=True, disable=not console.is_terminal
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


@contextmanager
def _writer(path: Path, *, create: bool) -> Iterator[sqlite3.Connection]:
    """The store's writable connection; RpiError becomes a one-line CLI error.

    After a write that succeeded, the stored answers of the patients it changed are
    rendered again (``store.answers``).
    """
    try:
        conn = schema.connect_writer(path, create=create)
    except RpiError as exc:
        raise fail(str(exc)) from None
    try:
        yield conn
        render_stored_answers(conn, path)
    finally:
        conn.close()


def render_stored_answers(conn: sqlite3.Connection, path: Path) -> int:
    """Render the missing or outdated stored answers, with a progress bar on stderr."""
    started = time.perf_counter()
    with _progress("rendering answers", counts=True) as bar:
        count = prerender.prerender(conn, path, progress=bar)
    if count:
        seconds = time.perf_counter() - started
        _stderr().print(f"stored {count} rendered answers in {seconds:.1f} s", highlight=False)
    return count


def prerender_file(path: Path) -> int:
    """``render_stored_answers`` for the store at ``path``, opened (and brought up to date)
    for it; an unusable file is a one-line CLI error."""
    try:
        conn = schema.connect_writer(path)
    except RpiError as exc:
        raise fail(str(exc)) from None
    try:
        return render_stored_answers(conn, path)
    except sqlite3.Error as exc:
        raise fail(f"cannot render the stored answers of {path}: {exc}") from None
    finally:
        conn.close()


def _remove_new_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


@db_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="Patient documents: JSON array, or NDJSON.")],
    db: DbOption = None,
    create: Annotated[
        bool, typer.Option("--create", help="Create the database if it does not exist.")
    ] = False,
) -> None:
    """Import patient documents, all or nothing (see docs/patient-document.md)."""
    path = _target_db(db, "import")
    if not file.is_file():
        raise fail(f"{file}: no such file" if not file.exists() else f"{file}: not a file")
    existed = path.exists()
    if not existed and not create:
        raise fail(f"database {path} does not exist (add --create to make a new one)")
    if not existed:
        path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        with (
            _writer(path, create=create) as conn,
            bulk.first_load(conn, new_database=not existed),
            _progress("importing", counts=False) as bar,
        ):
            summary = importer.import_file(
                conn, file, progress=bar, workers=importer.auto_workers(file)
            )
    except RpiError as exc:
        if not existed:
            _remove_new_database(path)
        raise fail(str(exc)) from None
    except BaseException:
        if not existed:
            _remove_new_database(path)
        raise
    seconds = time.perf_counter() - started
    typer.echo(
        f"imported {summary.patients} patients ({summary.facts} facts) from {file} "
        f"into {path} in {seconds:.1f} s"
    )


@db_app.command("import-dicom")
def import_dicom(
    directory: Annotated[Path, typer.Argument(help="Directory tree of DICOM files.")],
    db: DbOption = None,
    issuer: Annotated[
        str,
        typer.Option("--issuer", help="Issuer of Patient ID for files that carry none."),
    ] = "",
    create: Annotated[
        bool, typer.Option("--create", help="Create the database if it does not exist.")
    ] = False,
) -> None:
    """Add patients' demographics from DICOM files (keeps stored clinical history)."""
    path = _target_db(db, "import-dicom")
    if not directory.is_dir():
        raise fail(f"{directory}: not a directory")
    existed = path.exists()
    if not existed and not create:
        raise fail(f"database {path} does not exist (add --create to make a new one)")
    if not existed:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _writer(path, create=create) as conn, _progress("reading", counts=True) as bar:
            summary = dicom_import.import_dicom(conn, directory, issuer=issuer, progress=bar)
    except RpiError as exc:
        if not existed:
            _remove_new_database(path)
        raise fail(str(exc)) from None
    typer.echo(f"{directory}: {summary.describe()}")


@db_app.command("demo")
def demo_(
    db: DbOption = None,
    patients: Annotated[
        int, typer.Option("--patients", min=0, help="Number of DEMO patients.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (same seed, same data).")] = 0,
    force: Annotated[
        bool, typer.Option("--force", help="Also into a database holding other patients.")
    ] = False,
) -> None:
    """Fill the store with a reproducible synthetic population (created if missing).

    Patients DEMO000001... (issuer DEMO), plus DEMO-DUP under ISSUER_A and ISSUER_B.
    A database that holds other patients is refused unless --force is given.
    """
    path = _db_path(db)
    existed = path.exists()
    if existed and not force:
        _refuse_non_demo(path)
    if db is None:
        path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    total = patients + 2

    try:
        with (
            _writer(path, create=True) as conn,
            bulk.first_load(conn, new_database=not existed),
            _progress("generating", counts=True) as bar,
        ):
            written = demo.populate(conn, patients, seed, progress=lambda n: bar(n, total))
    except BaseException:
        if not existed:
            _remove_new_database(path)
        raise
    seconds = time.perf_counter() - started
    typer.echo(f"wrote {written} demo patients (seed {seed}) to {path} in {seconds:.1f} s")


def _refuse_non_demo(path: Path) -> None:
    try:
        others = demo_check.non_demo_patients(path)
    except (RpiError, sqlite3.Error):
        return  # not a usable database: the writer says why
    if others:
        raise fail(
            f"database {path} holds {others} patients that are not demo patients; "
            "add --force to add synthetic patients to it anyway"
        )


def _stats(path: Path) -> dict[str, int]:
    try:
        schema.check_file(path)
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except (RpiError, sqlite3.Error) as exc:
        raise fail(str(exc)) from None
    try:
        version = schema.check_version(conn, path)
        if version < schema.SCHEMA_VERSION:
            raise fail(
                f"database {path} has schema version {version}: "
                f"run 'rpi-async db migrate --db {path}'"
            )
        out = writer.stats(conn)
    except RpiError as exc:
        raise fail(str(exc)) from None
    except sqlite3.Error as exc:
        raise fail(f"{path} is not a usable rpi-async database: {exc}") from None
    finally:
        conn.close()
    out["file_bytes"] = path.stat().st_size
    return out


def _content(path: Path) -> str:
    from rpi_async.ops.store_info import content_digest

    try:
        return content_digest(path)
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror or exc}") from None


@db_app.command("stats")
def stats(
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Content digest, schema version, generation, patients, facts, file size (read-only)."""
    path = _db_path(db)
    out = _stats(path)
    content = _content(path)
    if as_json:
        typer.echo(
            json.dumps({"database": str(path), "content": content, **out}, indent=2, sort_keys=True)
        )
        return
    lines = [
        f"database        {path}",
        f"content         {content}  (rpi_store_info in /metrics)",
        f"schema version  {out['schema_version']}",
        f"file size       {out['file_bytes']:,} bytes",
        f"generation      {out['generation']}",
        f"patients        {out['patients']:,}",
        f"issuers         {out['issuers']:,}",
        f"other IDs       {out['other_patient_ids']:,}",
        f"facts           {out['facts']:,}",
        f"FHIR resources  {out['fhir_resources']:,}",
    ]
    lines += [
        f"  {key.removeprefix('facts.'):<18}{n:>12,}"
        for key, n in out.items()
        if key.startswith("facts.")
    ]
    typer.echo("\n".join(lines))


@db_app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(help="Patient documents: JSON array, or NDJSON.")],
) -> None:
    """Check a patient document file without importing it."""
    try:
        patients = facts = 0
        for record in importer.read_records(file):
            patients += 1
            facts += len(record.facts)
    except RpiError as exc:
        raise fail(str(exc).removesuffix("; nothing was imported")) from None
    typer.echo(f"{file}: {patients} patients, {facts} facts: valid")


def _pairs(
    values: list[str], option: str, parse: Callable[[str], tuple[str, str]]
) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        try:
            key, mapped = parse(value)
        except ValueError as exc:
            raise fail(f"{option}: {exc}") from None
        out[key] = mapped
    return out


def _issuer_pair(text: str) -> tuple[str, str]:
    system, sep, issuer = text.rpartition("=")
    if not sep or not system or not issuer.strip():
        raise ValueError(f"{text!r} is not SYSTEM=ISSUER")
    if len(issuer) > 64 or "\\" in issuer or not issuer.isprintable():
        raise ValueError(f"{issuer!r} is not an Issuer of Patient ID (LO, 1-64 characters)")
    return system, issuer.strip()


@db_app.command("import-fhir")
def import_fhir(
    paths: Annotated[
        list[Path],
        typer.Argument(help="FHIR R4 Bundles (.json), NDJSON files, Bulk Data directories."),
    ],
    db: DbOption = None,
    create: Annotated[
        bool, typer.Option("--create", help="Create the database if it does not exist.")
    ] = False,
    issuer_map: Annotated[
        list[str] | None,
        typer.Option(
            "--issuer-map",
            metavar="SYSTEM=ISSUER",
            help="Patient.identifier system that is the Patient ID, and its Issuer of "
            "Patient ID (repeatable, in order of preference).",
        ),
    ] = None,
    code_system: Annotated[
        list[str] | None,
        typer.Option(
            "--code-system",
            metavar="URI=DESIGNATOR",
            help="A code system's DICOM Coding Scheme Designator, beyond the built-in table.",
        ),
    ] = None,
    spool_dir: Annotated[
        Path | None,
        typer.Option(
            "--spool-dir",
            help="Directory for the temporary spool (about a quarter of the input's size). "
            "Default: the system's temporary directory.",
        ),
    ] = None,
) -> None:
    """Import FHIR R4 resources; each patient is updated in its own transaction.

    Safe while the database is being served. Invalid input writes nothing (see
    docs/fhir-import.md).
    """
    path = _target_db(db, "import-fhir")
    issuers = _pairs(issuer_map or [], "--issuer-map", _issuer_pair)
    systems = _pairs(code_system or [], "--code-system", codes.parse_code_system)
    if spool_dir is not None and not spool_dir.is_dir():
        raise fail(f"--spool-dir: {spool_dir} is not a directory")
    existed = path.exists()
    if not existed and not create:
        raise fail(f"database {path} does not exist (add --create to make a new one)")
    if not existed:
        path.parent.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    summary = load.FhirSummary()
    try:
        with _writer(path, create=create) as conn, _progress("importing", counts=True) as bar:
            summary = load.import_fhir(
                conn,
                paths,
                issuer_map=issuers,
                code_systems=systems,
                progress=bar,
                spool_dir=spool_dir,
            )
    except RpiError as exc:
        if not existed:
            _remove_new_database(path)
        raise fail(str(exc)) from None
    except sqlite3.Error as exc:
        raise fail(
            f"{path}: {exc}; {summary.patients} patients were updated before the failure"
        ) from None
    except BaseException:
        if not existed:
            _remove_new_database(path)
        raise
    seconds = time.perf_counter() - started
    typer.echo(f"imported {summary.describe()} into {path} in {seconds:.1f} s")
