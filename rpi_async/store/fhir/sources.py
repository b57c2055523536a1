"""Reading FHIR R4 input: Bundles, NDJSON files and Bulk Data export directories.

Theory of operation: ``entries(paths)`` yields every resource of the input, one at a
time, with where it was found ("file: entry 3", "file: line 7"), so that an error can
name it. A path is

- a directory: its ``*.ndjson`` / ``*.jsonl`` files (a Bulk Data export: one file per
  resource type, FHIR Bulk Data Access IG) and its ``*.json`` files (for example one
  Bundle per patient), in name order, not recursively;
- an NDJSON file (``.ndjson``, ``.jsonl``): one resource per line, read line by line, so
  an export of any size is never held in memory; a line may also hold a Bundle;
- any other file: one JSON value, a Bundle of type transaction, batch, collection or
  searchset (each ``entry.resource`` with its ``fullUrl``), or a single resource.

Parsing is orjson's. Malformed JSON, a Bundle of another type and an unreadable file are
``ImportFailed`` naming the file and the line or entry.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from rpi_async.errors import ImportFailed

NDJSON_SUFFIXES = frozenset({".ndjson", ".jsonl"})
JSON_SUFFIXES = frozenset({".json"})
BUNDLE_TYPES = frozenset({"transaction", "batch", "collection", "searchset"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One resource of the input and where it was found."""

    where: str
    resource: Any
    full_url: str = ""


def files(paths: Sequence[Path]) -> list[Path]:
    """The files the input names (directories expanded), or ImportFailed."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(
                p
                for p in path.iterdir()
                if p.is_file() and p.suffix.lower() in NDJSON_SUFFIXES | JSON_SUFFIXES
            )
            if not found:
                raise ImportFailed(f"{path}: no .ndjson, .jsonl or .json files in the directory")
            out.extend(found)
        elif path.is_file():
            out.append(path)
        elif path.exists():
            raise ImportFailed(f"{path}: not a file or directory")
        else:
            raise ImportFailed(f"{path}: no such file or directory")
    return out


def entries(paths: Sequence[Path]) -> Iterator[Entry]:
    """Every resource of the input, in file order."""
    for path in files(paths):
        if path.suffix.lower() in NDJSON_SUFFIXES:
            yield from _ndjson(path)
        else:
            yield from _json(path)


def _ndjson(path: Path) -> Iterator[Entry]:
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot be read: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            where = f"{path}: line {number}"
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ImportFailed(f"{where}: invalid JSON: {_reason(exc)}") from None
            if isinstance(value, dict) and value.get("resourceType") == "Bundle":
                yield from _bundle(value, where)
            else:
                yield Entry(where, value)


def _json(path: Path) -> Iterator[Entry]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ImportFailed(f"{path}: invalid JSON: {_reason(exc)}") from None
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        yield from _bundle(value, str(path))
    elif isinstance(value, dict):
        yield Entry(str(path), value)
    else:
        raise ImportFailed(f"{path}: expected a FHIR resource or Bundle (a JSON object)")


def _bundle(value: dict[str, Any], where: str) -> Iterator[Entry]:
    kind = value.get("type")
    if kind not in BUNDLE_TYPES:
        raise ImportFailed(
            f"{where}: Bundle.type {kind!r} is not imported "
            f"(one of {', '.join(sorted(BUNDLE_TYPES))})"
        )
    items = value.get("entry") or []
    if not isinstance(items, list):
        raise ImportFailed(f"{where}: Bundle.entry: expected an array")
    for i, item in enumerate(items, 1):
        here = f"{where}: entry {i}"
        if not isinstance(item, dict):
            raise ImportFailed(f"{here}: expected an object")
        request = item.get("request")
        if isinstance(request, dict) and request.get("method") == "DELETE":
            raise ImportFailed(f"{here}: request.method DELETE is not supported")
        resource = item.get("resource")
        if resource is None:
            raise ImportFailed(f"{here}: entry without a resource")
        full_url = item.get("fullUrl")
        yield Entry(here, resource, full_url if isinstance(full_url, str) else "")


def _reason(exc: orjson.JSONDecodeError) -> str:
    return str(exc).split("\n", 1)[0]
