"""Which data a node serves: the store identity shown in ``/metrics`` and ``db stats``.

Theory of operation. Behind a load balancer every node must serve the same replica;
nothing in the answers shows which one a node has. When the server opens its database
(at start and at every reload) it reads, in a thread, the file's identity:

- ``content``: the first 16 hex digits of the SHA-256 of the database file as loaded
  (the same digest ``rpi-async db stats`` prints): two nodes with equal values serve
  byte-identical files. Hashing reads the whole file once (about a second per GB);
- ``generation``: the store's counter, bumped by every import transaction;
- ``schema``: the schema version (``PRAGMA user_version``);
- ``patients``: how many patients it holds;
- ``loaded``: when the server opened it (Unix time);
- ``answer_renderers``: the renderer fingerprints of its stored answers
  (``store.answers.renderers``), for the server's warning when they are not this
  version's.

A live ``db import-fhir`` into the served file changes it without a reload: the
generation and patients then describe the file as it was loaded, until the next reload.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from rpi_async.store import answers
from rpi_async.store.readonly import read_only_uri

CONTENT_DIGITS = 16


@dataclass(frozen=True, slots=True)
class StoreIdentity:
    content: str
    generation: int
    schema: int
    patients: int
    loaded: float
    answer_renderers: frozenset[str] = frozenset()


def content_digest(path: Path) -> str:
    """SHA-256 of the database file, shortened to ``CONTENT_DIGITS`` hex digits."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()[:CONTENT_DIGITS]


def identify(path: Path) -> StoreIdentity:
    """The identity of the database at ``path``, read without writing it (blocking)."""
    content = content_digest(path)
    conn = sqlite3.connect(read_only_uri(path), uri=True)
    try:
        schema = int(conn.execute("PRAGMA user_version").fetchone()[0])
        row = conn.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        patients = int(conn.execute("SELECT count(*) FROM patient").fetchone()[0])
        renderers = answers.renderers(conn)
    finally:
        conn.close()
    generation = int(row[0]) if row else 0
    return StoreIdentity(content, generation, schema, patients, time.time(), renderers)
