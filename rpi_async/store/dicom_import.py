"""Importing patient demographics from a directory tree of DICOM files.

Theory of operation: the tree is walked in sorted order (so that "first value wins" is
reproducible). A file is taken for DICOM only if it has the Part 10 preamble and the
"DICM" prefix (PS3.10 §7.1); anything else is counted and skipped, unread. DICOM files
are read with ``stop_before_pixels`` and ``specific_tags`` so that only the Patient
Module attributes are parsed (PS3.3 C.7.1.1): Patient ID, Issuer of Patient ID,
Patient's Name, Birth Date, Sex and the Other Patient IDs Sequence. Many files describe
the same patient; they are merged per (Patient ID, issuer): the first non-empty value of
each attribute wins, later different values are counted as conflicts, and other IDs are
united. Values that are not valid DICOM (a malformed date, an unknown sex code) are
dropped and counted, never guessed at. The merged patients go to the store in one
transaction through ``writer.merge_demographics``, which keeps any clinical history the
store already holds for them.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydicom import config as pydicom_config
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from rpi_async.errors import ImportFailed
from rpi_async.store import writer
from rpi_async.store.document import (
    DocumentError,
    dicom_date,
    long_string,
    person_name,
)
from rpi_async.store.model import OtherPatientId, PatientRecord

log = logging.getLogger("rpi_async.store")

PATIENT_TAGS = (
    "SpecificCharacterSet",
    "PatientID",
    "IssuerOfPatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "OtherPatientIDsSequence",
)
_PREAMBLE = 128
_MAGIC = b"DICM"
_SEXES = frozenset({"M", "F", "O"})

# progress(files done, files total)
Progress = Callable[[int, int], None]


@dataclass(slots=True)
class DicomImportSummary:
    files: int = 0
    dicom: int = 0
    not_dicom: int = 0
    unreadable: int = 0
    without_patient_id: int = 0
    invalid_values: int = 0
    conflicts: int = 0
    patients: int = 0
    added: int = 0
    updated: int = 0

    def describe(self) -> str:
        return (
            f"{self.files} files: {self.dicom} DICOM, {self.not_dicom} not DICOM (skipped), "
            f"{self.unreadable} unreadable (skipped), {self.without_patient_id} without "
            f"Patient ID (skipped); {self.patients} patients ({self.added} added, "
            f"{self.updated} updated); {self.invalid_values} invalid values dropped, "
            f"{self.conflicts} conflicting values (first kept)"
        )


@dataclass(slots=True)
class _Patient:
    patient_id: str
    issuer: str
    name: str = ""
    birth_date: str = ""
    sex: str = ""
    others: dict[tuple[str, str], OtherPatientId] = field(default_factory=dict)

    def record(self) -> PatientRecord:
        return PatientRecord(
            patient_id=self.patient_id,
            issuer=self.issuer,
            name=self.name,
            birth_date=self.birth_date,
            sex=self.sex,
            other_ids=tuple(self.others.values()),
        )


def dicom_files(root: Path) -> list[Path]:
    """Every regular file under ``root``, in sorted order."""
    if not root.is_dir():
        raise ImportFailed(f"{root}: not a directory")
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        out.extend(Path(dirpath) / name for name in sorted(filenames))
    return out


def _has_dicom_prefix(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(_PREAMBLE + len(_MAGIC))
    except OSError:
        return False
    return head[_PREAMBLE:] == _MAGIC


@contextmanager
def _quiet_pydicom() -> Iterator[None]:
    """Invalid values are our business (counted and dropped): no pydicom warnings or logs."""
    settings = pydicom_config.settings
    mode = settings.reading_validation_mode
    settings.reading_validation_mode = pydicom_config.IGNORE
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        settings.reading_validation_mode = mode


def _read(path: Path) -> Dataset:
    ds = dcmread(path, stop_before_pixels=True, specific_tags=list(PATIENT_TAGS))
    for keyword in PATIENT_TAGS:  # decode the values now, while damage is still caught
        ds.get(keyword)
    return ds


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip(" \x00")


class _Merger:
    def __init__(self, default_issuer: str, summary: DicomImportSummary) -> None:
        self.default_issuer = default_issuer
        self.summary = summary
        self.patients: dict[tuple[str, str], _Patient] = {}

    def valid(self, parse: Callable[[object, str], str], value: str, name: str) -> str:
        if not value:
            return ""
        try:
            return parse(value, name)
        except DocumentError:
            self.summary.invalid_values += 1
            return ""

    def add(self, ds: Dataset) -> None:
        pid = self.valid(long_string, _text(ds, "PatientID"), "PatientID")
        if not pid:
            self.summary.without_patient_id += 1
            return
        issuer = self.valid(long_string, _text(ds, "IssuerOfPatientID"), "IssuerOfPatientID")
        issuer = issuer or self.default_issuer
        patient = self.patients.get((pid, issuer))
        if patient is None:
            patient = self.patients[(pid, issuer)] = _Patient(pid, issuer)
        self.merge(patient, "name", self.valid(person_name, _text(ds, "PatientName"), "name"))
        birth = self.valid(dicom_date, _text(ds, "PatientBirthDate"), "birth_date")
        self.merge(patient, "birth_date", birth)
        sex = _text(ds, "PatientSex").upper()
        if sex and sex not in _SEXES:
            self.summary.invalid_values += 1
            sex = ""
        self.merge(patient, "sex", sex)
        for item in ds.get("OtherPatientIDsSequence") or ():
            other = self.valid(long_string, _text(item, "PatientID"), "PatientID")
            if not other:
                continue
            other_issuer = self.valid(long_string, _text(item, "IssuerOfPatientID"), "issuer")
            kind = _text(item, "TypeOfPatientID") or "TEXT"
            if (other, other_issuer) != (pid, issuer):
                patient.others.setdefault(
                    (other, other_issuer), OtherPatientId(other, other_issuer, kind)
                )

    def merge(self, patient: _Patient, attribute: str, value: str) -> None:
        if not value:
            return
        current = getattr(patient, attribute)
        if not current:
            setattr(patient, attribute, value)
        elif current != value:
            self.summary.conflicts += 1


def scan(
    root: Path, *, issuer: str = "", progress: Progress | None = None
) -> tuple[list[PatientRecord], DicomImportSummary]:
    """Demographics of every patient found in the DICOM files under ``root``."""
    try:
        default_issuer = long_string(issuer, "--issuer")
    except DocumentError as exc:
        raise ImportFailed(f"invalid issuer: {exc}") from None
    files = dicom_files(root)
    summary = DicomImportSummary(files=len(files))
    merger = _Merger(default_issuer, summary)
    with _quiet_pydicom():
        for done, path in enumerate(files, 1):
            if not _has_dicom_prefix(path):
                summary.not_dicom += 1
            else:
                try:
                    ds = _read(path)
                except InvalidDicomError:
                    summary.not_dicom += 1
                except Exception as exc:  # a damaged file must not stop the import
                    log.debug("cannot read %s: %s", path, exc)
                    summary.unreadable += 1
                else:
                    summary.dicom += 1
                    merger.add(ds)
            if progress is not None:
                progress(done, len(files))
    records = [p.record() for p in merger.patients.values()]
    summary.patients = len(records)
    return records, summary


def import_dicom(
    conn: sqlite3.Connection,
    root: Path,
    *,
    issuer: str = "",
    progress: Progress | None = None,
) -> DicomImportSummary:
    """Scan ``root`` and merge the demographics found into the store, in one transaction."""
    records, summary = scan(root, issuer=issuer, progress=progress)
    summary.added, summary.updated = writer.merge_demographics(conn, records)
    log.info(
        "imported demographics of %d patients from %d DICOM files", summary.patients, summary.dicom
    )
    return summary
