"""Importing patient documents from JSON or NDJSON files, all or nothing.

Theory of operation: a file holds patient documents (see ``document.py``) as a JSON array,
as an object ``{"patients": [...]}``, or as NDJSON (one document per line). The format is
taken from the extension (.ndjson, .jsonl) or else from the content. Documents are
decoded one at a time with ``json.JSONDecoder.raw_decode`` at a known offset, so an error
can name the record's ordinal and line even inside one big array, and so records stream
into the writer without a second in-memory copy of the file. Everything happens inside
the writer's single transaction: the first bad record raises ``ImportFailed`` (one line:
file, record, line, patient ID, field) and the transaction is rolled back, so a failed
import leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import orjson

from rpi_async.errors import ImportFailed
from rpi_async.store import parallel, writer
from rpi_async.store.document import (
    DocumentError,
    parse_patient,
    parse_patient_rows,
    patient_id_of,
)
from rpi_async.store.model import PatientRecord
from rpi_async.store.writer import PatientRows

NDJSON_SUFFIXES = frozenset({".ndjson", ".jsonl"})
WRAPPER_KEY = "patients"

log = logging.getLogger("rpi_async.store")

_WS = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()

# progress(bytes done, bytes total)
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class RawDocument:
    """One undecoded-to-record patient document and where it was found."""

    value: Any
    ordinal: int  # 1-based position in the file
    line: int  # 1-based line where the document starts
    offset: int  # bytes (NDJSON) or characters (JSON) consumed so far


@dataclass(frozen=True, slots=True)
class ImportSummary:
    patients: int
    facts: int


def _fail(path: Path, message: str) -> ImportFailed:
    return ImportFailed(f"{path}: {message}; nothing was imported")


def _json_error(path: Path, exc: json.JSONDecodeError, where: str = "") -> ImportFailed:
    return _fail(path, f"{where}invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}")


class _Scanner:
    """Walks a JSON text that is an array of documents or an object holding one."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        match = _WS.match(self.text, self.pos)
        assert match is not None  # the pattern matches the empty string
        self.pos = match.end()

    def peek(self) -> str:
        self.skip_ws()
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self.error(f"expected {what}")
        self.pos += 1

    def value(self, where: str = "") -> Any:
        self.skip_ws()
        try:
            obj, self.pos = _DECODER.raw_decode(self.text, self.pos)
        except json.JSONDecodeError as exc:
            raise _json_error(self.path, exc, where) from None
        return obj

    def line_at(self, pos: int) -> int:
        return self.text.count("\n", 0, pos) + 1

    def error(self, message: str) -> ImportFailed:
        line = self.line_at(self.pos)
        col = self.pos - (self.text.rfind("\n", 0, self.pos) + 1) + 1
        return _fail(self.path, f"invalid JSON at line {line} column {col}: {message}")

    def array(self) -> Iterator[RawDocument]:
        self.expect("[", "'['")
        ordinal = 0
        if self.peek() == "]":
            self.pos += 1
            return
        line, last = 1, 0
        while True:
            self.skip_ws()
            start = self.pos
            ordinal += 1
            line += self.text.count("\n", last, start)
            last = start
            obj = self.value(f"record {ordinal} (line {line}): ")
            yield RawDocument(obj, ordinal, line, self.pos)
            char = self.peek()
            self.pos += 1
            if char == "]":
                return
            if char != ",":
                self.pos -= 1
                raise self.error("expected ',' or ']' after a patient")

    def wrapper(self) -> Iterator[RawDocument]:
        """``{"patients": [...]}``, possibly with other keys such as "$schema"."""
        self.expect("{", "'{'")
        found = False
        while self.peek() != "}":
            if self.peek() != '"':
                raise self.error("expected a key")
            key = self.value()
            self.expect(":", "':'")
            if key == WRAPPER_KEY:
                if self.peek() != "[":
                    raise self.error(f"'{WRAPPER_KEY}' must be an array")
                yield from self.array()
                found = True
            else:
                self.value()
            if self.peek() == ",":
                self.pos += 1
            elif self.peek() != "}":
                raise self.error("expected ',' or '}'")
        self.pos += 1
        if not found:
            raise _fail(self.path, f"the top-level object has no '{WRAPPER_KEY}' array")

    def sequence(self) -> Iterator[RawDocument]:
        """Documents separated by whitespace: NDJSON, or one single object.

        A document that is one whole line (NDJSON) is decoded by orjson, about twice as
        fast; anything else, including every error, by the standard decoder, which can
        stop at the end of a value and says where the text went wrong.
        """
        text = self.text
        ordinal, line, last = 0, 1, 0
        while self.peek():
            start = self.pos
            ordinal += 1
            line += text.count("\n", last, start)
            last = start
            end = text.find("\n", start)
            if end < 0:
                end = len(text)
            try:
                obj = orjson.loads(text[start:end])
            except orjson.JSONDecodeError:
                obj = self.value(f"record {ordinal} (line {line}): ")
            else:
                self.pos = end
            yield RawDocument(obj, ordinal, line, self.pos)

    def end(self) -> None:
        if self.peek():
            raise self.error("extra data after the end of the document")


def read_text(path: Path) -> str:
    """The text of an import file, or ImportFailed."""
    return _decode_text(path, _read(path))


def _decode_text(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _fail(path, f"not UTF-8 text (byte {exc.start})") from None


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ImportFailed(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFailed(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot be read: {exc.strerror}") from None


def _is_wrapper_or_array(path: Path, text: str) -> bool:
    """True for a JSON array or a ``{"patients": [...]}`` object; else a sequence."""
    if path.suffix.lower() in NDJSON_SUFFIXES:
        return False
    match = _WS.match(text)
    assert match is not None  # the pattern matches the empty string
    start = match.end()
    if text[start : start + 1] == "[":
        return True
    # An object: the wrapper if its first key is "patients", or if it is the only value
    # and has a "patients" or "$schema" key (which no patient document has).
    head = _WS.match(text, start + 1)
    assert head is not None
    if text.startswith(f'"{WRAPPER_KEY}"', head.end()):
        return True
    try:
        first, end = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError:
        return False  # reported with its record number by the sequence reader
    wrapper = isinstance(first, dict) and (WRAPPER_KEY in first or "$schema" in first)
    return wrapper and not text[end:].strip()


def raw_documents(path: Path, text: str | None = None) -> tuple[int, Iterator[RawDocument]]:
    """(total size, iterator of raw documents) for a JSON or NDJSON file (or its text)."""
    if text is None:
        text = read_text(path)
    if not text.strip():
        raise _fail(path, "the file is empty")
    scanner = _Scanner(path, text)
    if not _is_wrapper_or_array(path, text):
        return len(text), scanner.sequence()

    def walk() -> Iterator[RawDocument]:
        if scanner.peek() == "[":
            yield from scanner.array()
        elif scanner.peek() == "{":
            yield from scanner.wrapper()
        else:
            raise scanner.error("expected '[' or '{' (an array of patients or an object)")
        scanner.end()

    return len(text), walk()


def _describe(raw: RawDocument) -> str:
    pid = patient_id_of(raw.value)
    where = f"record {raw.ordinal} (line {raw.line}"
    return where + (f", patient_id {pid!r})" if pid else ")")


R = TypeVar("R", PatientRecord, PatientRows)


def _parsed(
    path: Path,
    parse: Callable[[object], R],
    progress: Progress | None = None,
    text: str | None = None,
) -> Iterator[R]:
    total, documents = raw_documents(path, text)
    seen: dict[tuple[str, str], int] = {}
    # A progress bar redraws at most a few times a second: report every 1/1000th.
    step, next_report = max(total // 1000, 1), 0
    for raw in documents:
        try:
            record = parse(raw.value)
        except DocumentError as exc:
            raise _fail(path, f"{_describe(raw)}: {exc}") from None
        key = (record.patient_id, record.issuer)
        first = seen.setdefault(key, raw.ordinal)
        if first != raw.ordinal:
            raise _fail(
                path,
                f"{_describe(raw)}: same patient_id and issuer as record {first}",
            )
        if progress is not None and raw.offset >= next_report:
            progress(raw.offset, total)
            next_report = raw.offset + step
        yield record
    if progress is not None:
        progress(total, total)


def read_records(path: Path, progress: Progress | None = None) -> Iterator[PatientRecord]:
    """Validated records of a file, in order. Raises ImportFailed at the first bad one."""
    return _parsed(path, parse_patient, progress)


def import_file(
    conn: sqlite3.Connection,
    path: Path,
    *,
    progress: Progress | None = None,
    workers: int = 1,
) -> ImportSummary:
    """Validate and write every patient of ``path`` in one transaction; all or nothing.

    With ``workers`` > 1, an NDJSON file loaded into an empty store is validated by that
    many processes while this one writes (``store.parallel``); if they give up, the
    transaction is rolled back and the file imported again in this process alone, which
    reports any error. ``auto_workers`` picks the count for a file of a given size.
    """
    text = read_text(path)
    if workers > 1 and text.strip() and not _is_wrapper_or_array(path, text):
        total = len(text)
        on_chunk = None if progress is None else (lambda end: progress(end, total))
        try:
            # Lazy: no worker starts before write_rows has found the store empty.
            chunks = parallel.parsed_rows(
                text,
                workers=workers,
                first_pk=1,
                stamp=writer.utc_timestamp(),
                on_chunk=on_chunk,
            )
            return ImportSummary(*writer.write_rows(conn, chunks))
        except (parallel.Fallback, writer.StoreNotEmpty) as exc:
            log.info("import of %s continues in one process: %s", path, exc)
    facts = 0

    def counted() -> Iterator[PatientRows]:
        nonlocal facts
        for record in _parsed(path, parse_patient_rows, progress, text):
            facts += len(record.facts)
            yield record

    patients = writer.write_patients(conn, counted())
    return ImportSummary(patients, facts)


def auto_workers(path: Path) -> int:
    """Worker processes worth starting to import ``path``: one per CPU for a large file."""
    try:
        size = path.stat().st_size
    except OSError:
        return 1  # import_file reports the problem
    return parallel.worker_count() if size >= parallel.MIN_PARALLEL_CHARS else 1
