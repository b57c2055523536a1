"""FHIR import: validate everything first, then update one patient per transaction.

Theory of operation. Pass 1 reads every resource of the input (``sources``), translates
it (``resources``) and validates its facts exactly as a document import does; the
results go to a spool, a temporary SQLite file keyed by patient reference, so that a
Bulk Data export (Patient.ndjson, Condition.ndjson, ... in any order) is grouped by
patient without holding it in memory. The first bad resource stops the import with one
line naming the file, the line or entry, the resource and the field: nothing has been
written at that point. Resources that cannot be used (a type this importer does not
read, no subject, entered in error, a subject found neither in the input nor in the
store) are skipped and counted.

Pass 2 resolves each resource's subject (``Patient/<id>`` or a Bundle's ``urn:uuid:``
fullUrl) through the input's Patients, else through ``fhir_patient`` (patients of
earlier imports), and updates each patient in its own transaction
(``writer.patient_transaction``): the resources of this import replace those with the
same ``Type/id`` in ``fhir_resource``, resources not in the input are kept, and the
patient's fact rows and compact copy are rebuilt from all of them, with the version and
the store's generation bumped. A server reading the store in WAL mode sees each patient
before or after its update, never in between, and answers from the new data at its next
query: this is the live update path. Facts of a patient that came from a patient
document are kept as one pseudo-resource, ``(document)``, the first time FHIR data is
added to that patient.

Within a patient, facts are ordered by section, then by date, then by resource; an
attribute (gynecological, social, laboratory) keeps only its most recent value per
concept, as the templates render one value per concept.
"""

from __future__ import annotations

import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from rpi_async.errors import ImportFailed
from rpi_async.store import writer
from rpi_async.store.document import fact_to_json, parse_fact
from rpi_async.store.fhir import sources
from rpi_async.store.fhir.codes import CodeMapper, FhirError
from rpi_async.store.fhir.resources import (
    FactEntry,
    PatientInfo,
    Skipped,
    Translated,
    Translator,
)
from rpi_async.store.model import ATTRIBUTE_SECTIONS, Fact, OtherPatientId, PatientRecord, Section
from rpi_async.store.reader import lookup_compact_now

DOCUMENT_RESOURCE = "(document)"
NO_PATIENT = "resource whose patient is in neither the input nor the store"
_SECTION_RANK = {s.value: i for i, s in enumerate(Section)}
_BATCH = 5000
Progress = Callable[[int, int], None]

_SPOOL_SCHEMA = (
    "CREATE TABLE patient (key TEXT PRIMARY KEY, info BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE alias (ref TEXT PRIMARY KEY, key TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE item (seq INTEGER PRIMARY KEY, ref TEXT NOT NULL, key TEXT, "
    "resource TEXT NOT NULL, facts BLOB NOT NULL)",
)


@dataclass(slots=True)
class FhirSummary:
    """What an import did: patients written, resources used, facts, and skips by reason."""

    patients: int = 0
    resources: int = 0
    facts: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def describe(self) -> str:
        text = f"{self.patients} patients ({self.resources} resources, {self.facts} facts)"
        if self.skipped:
            parts = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items()))
            text += f"; skipped {sum(self.skipped.values())}: {parts}"
        return text


class _Spool:
    """The validated input, grouped by patient: a temporary SQLite file."""

    def __init__(self, directory: Path | None) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="rpi-fhir-", dir=directory)
        self.conn = sqlite3.connect(Path(self._dir.name) / "spool.sqlite3", isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        for statement in _SPOOL_SCHEMA:
            self.conn.execute(statement)
        self.conn.execute("BEGIN")
        self._items: list[tuple[str, str, bytes]] = []

    def patient(self, info: PatientInfo) -> None:
        others = [(o.patient_id, o.issuer, o.type_of_id) for o in info.other_ids]
        i = info
        blob = orjson.dumps(
            [i.key, i.aliases, i.patient_id, i.issuer, i.name, i.birth_date, i.sex, others]
        )
        self.conn.execute("INSERT OR REPLACE INTO patient VALUES (?, ?)", (info.key, blob))
        self.conn.executemany(
            "INSERT OR REPLACE INTO alias VALUES (?, ?)", [(a, info.key) for a in info.aliases]
        )

    def item(self, item: Translated) -> None:
        self._items.append((item.subject, item.key, orjson.dumps(item.facts)))
        if len(self._items) >= _BATCH:
            self._flush()

    def _flush(self) -> None:
        self.conn.executemany(
            "INSERT INTO item (ref, resource, facts) VALUES (?, ?, ?)", self._items
        )
        self._items.clear()

    def seal(self) -> int:
        """Resolve subjects through the input's patients; the number of patients."""
        self._flush()
        self.conn.execute("UPDATE item SET key = (SELECT key FROM alias WHERE ref = item.ref)")
        self.conn.execute("CREATE INDEX item_by_key ON item (key, ref, seq)")
        self.conn.execute("COMMIT")
        return int(self.conn.execute("SELECT count(*) FROM patient").fetchone()[0])

    def close(self) -> None:
        self.conn.close()
        self._dir.cleanup()


def import_fhir(
    conn: sqlite3.Connection,
    paths: Sequence[Path],
    *,
    issuer_map: Mapping[str, str] | None = None,
    code_systems: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    spool_dir: Path | None = None,
) -> FhirSummary:
    """Import FHIR R4 input into the store; ImportFailed (nothing written) on bad input."""
    translator = Translator(issuer_map or {}, CodeMapper(code_systems))
    summary = FhirSummary()
    spool = _Spool(spool_dir)
    try:
        _read(paths, translator, spool, summary)
        total = spool.seal()
        _write(conn, spool, summary, total, progress)
    finally:
        spool.close()
    return summary


def _read(
    paths: Sequence[Path], translator: Translator, spool: _Spool, summary: FhirSummary
) -> None:
    """Pass 1: translate and validate everything into the spool."""
    for entry in sources.entries(paths):
        try:
            out = translator.resource(entry.resource, entry.full_url)
        except FhirError as exc:
            raise ImportFailed(
                f"{entry.where} ({_name(entry.resource)}): {exc}; nothing was imported"
            ) from None
        if isinstance(out, Skipped):
            summary.skipped[out.reason] += 1
        elif isinstance(out, PatientInfo):
            spool.patient(out)
        else:
            spool.item(out)


def _name(resource: object) -> str:
    if isinstance(resource, dict):
        rid = resource.get("id")
        kind = resource.get("resourceType", "resource")
        return f"{kind}/{rid}" if isinstance(rid, str) else str(kind)
    return "not a resource"


def _write(
    conn: sqlite3.Connection,
    spool: _Spool,
    summary: FhirSummary,
    total: int,
    progress: Progress | None,
) -> None:
    """Pass 2: one transaction per patient."""
    db = spool.conn
    rows = db.execute("SELECT key, info FROM patient ORDER BY key")
    for done, (key, blob) in enumerate(rows, 1):
        items = db.execute("SELECT resource, facts FROM item WHERE key = ? ORDER BY seq", (key,))
        _update(conn, _info(blob), None, items, summary)
        if progress is not None and done % 500 == 0:
            progress(done, total)
    unresolved = db.execute("SELECT ref, count(*) FROM item WHERE key IS NULL GROUP BY ref")
    for ref, count in unresolved.fetchall():
        row = conn.execute("SELECT patient_pk FROM fhir_patient WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            summary.skipped[NO_PATIENT] += int(count)
            continue
        items = db.execute(
            "SELECT resource, facts FROM item WHERE key IS NULL AND ref = ? ORDER BY seq", (ref,)
        )
        _update(conn, None, int(row[0]), items, summary)
    if progress is not None:
        progress(total, total)


def _info(blob: bytes) -> PatientInfo:
    key, aliases, patient_id, issuer, name, birth, sex, others = orjson.loads(blob)
    other_ids = tuple(OtherPatientId(*o) for o in others)
    return PatientInfo(key, tuple(aliases), patient_id, issuer, name, birth, sex, other_ids)


def _update(
    conn: sqlite3.Connection,
    info: PatientInfo | None,
    pk: int | None,
    items: Iterable[tuple[str, bytes]],
    summary: FhirSummary,
) -> None:
    """One patient's update, in its own transaction."""
    with writer.patient_transaction(conn) as stamp:
        if info is not None:
            found = conn.execute(
                "SELECT pk FROM patient WHERE patient_id = ? AND issuer = ?",
                (info.patient_id, info.issuer),
            ).fetchone()
            pk = None if found is None else int(found[0])
            head = PatientRecord(
                info.patient_id, info.issuer, info.name, info.birth_date, info.sex, info.other_ids
            )
        else:
            assert pk is not None
            pid, issuer = conn.execute(
                "SELECT patient_id, issuer FROM patient WHERE pk = ?", (pk,)
            ).fetchone()
            head = PatientRecord(str(pid), str(issuer))
        stored: dict[str, list[FactEntry]] = {} if pk is None else _stored(conn, pk, head)
        fresh: list[tuple[str, str]] = []
        for resource, facts in items:
            stored[resource] = orjson.loads(facts)
            fresh.append((resource, facts.decode() if isinstance(facts, bytes) else facts))
            summary.resources += 1
        record = PatientRecord(
            head.patient_id,
            head.issuer,
            head.name,
            head.birth_date,
            head.sex,
            head.other_ids,
            facts=assemble(stored),
        )
        new_pk = writer.put_patient(conn, record, stamp, demographics=info is not None)
        conn.executemany(
            "INSERT OR REPLACE INTO fhir_resource (patient_pk, resource, facts) VALUES (?, ?, ?)",
            [(new_pk, resource, facts) for resource, facts in fresh],
        )
        if info is not None:
            conn.executemany(
                "INSERT OR REPLACE INTO fhir_patient (ref, patient_pk) VALUES (?, ?)",
                [(alias, new_pk) for alias in info.aliases],
            )
    summary.patients += 1
    summary.facts += len(record.facts)


def _stored(conn: sqlite3.Connection, pk: int, head: PatientRecord) -> dict[str, list[FactEntry]]:
    """The resources stored for a patient; its document facts as one pseudo-resource."""
    stored = {
        str(resource): orjson.loads(facts)
        for resource, facts in conn.execute(
            "SELECT resource, facts FROM fhir_resource WHERE patient_pk = ?", (pk,)
        )
    }
    if stored:
        return stored
    found = lookup_compact_now(conn, head.patient_id, head.issuer)
    facts = found[0].to_record().facts if found else ()
    if facts:
        document: list[FactEntry] = [
            (f.section.value, fact_to_json(f), f.start or "") for f in facts
        ]
        stored[DOCUMENT_RESOURCE] = document
        conn.execute(
            "INSERT INTO fhir_resource (patient_pk, resource, facts) VALUES (?, ?, ?)",
            (pk, DOCUMENT_RESOURCE, orjson.dumps(document).decode()),
        )
    return stored


def assemble(stored: Mapping[str, Sequence[Sequence[Any]]]) -> tuple[Fact, ...]:
    """A patient's facts from its resources: ordered, one value per attribute concept."""
    entries: list[tuple[int, str, str, int, str, dict[str, Any]]] = []
    latest: dict[tuple[str, str, str], tuple[str, str]] = {}
    attribute = {s.value for s in ATTRIBUTE_SECTIONS}
    for resource, facts in stored.items():
        for i, (section, fact, when) in enumerate(facts):
            if section in attribute:
                concept = fact["concept"]
                ident = (section, *_concept_key(concept))
                if latest.get(ident, ("", "")) > (when, resource):
                    continue
                latest[ident] = (when, resource)
            entries.append((_SECTION_RANK[section], when, resource, i, section, fact))
    entries.sort(key=lambda e: e[:4])
    out: list[Fact] = []
    for _, when, resource, _, section, fact in entries:
        if section in attribute:
            ident = (section, *_concept_key(fact["concept"]))
            if latest[ident] != (when, resource):
                continue
        out.append(parse_fact(Section(section), fact))
    return tuple(out)


def _concept_key(concept: Any) -> tuple[str, str]:
    if isinstance(concept, dict):
        return str(concept["value"]), str(concept["scheme"])
    value, scheme, _ = str(concept).split("|", 2)
    return value, scheme
