"""Importing demographics from a tree of DICOM files written with pydicom."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from rpi_async.dicom.codes import Code
from rpi_async.errors import ImportFailed
from rpi_async.store import dicom_import, schema, writer
from rpi_async.store.model import Fact, OtherPatientId, PatientRecord, Section
from rpi_async.store.reader import PatientStore

SC = UID("1.2.840.10008.5.1.4.1.1.7")
KEEP_FACT = Fact(Section.DEVICE, code=Code("14106009", "SCT", "Cardiac pacemaker"))


def _write(path: Path, **attrs: object) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SC
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SC
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # some values are invalid on purpose
        for key, value in attrs.items():
            setattr(ds, key, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def _other(pid: str, issuer: str) -> Dataset:
    item = Dataset()
    item.PatientID = pid
    item.IssuerOfPatientID = issuer
    item.TypeOfPatientID = "TEXT"
    return item


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "dicom"
    # Jane: three files in two series; one adds her birth date, one her other ID,
    # one disagrees about her name (the first value, in sorted path order, wins).
    _write(root / "jane/s1/a.dcm", PatientID="J1", IssuerOfPatientID="HOSP", PatientName="Doe^Jane")
    _write(root / "jane/s1/b.dcm", PatientID="J1", IssuerOfPatientID="HOSP",
           PatientBirthDate="19700203", PatientSex="F")  # fmt: skip
    _write(root / "jane/s2/c.dcm", PatientID="J1", IssuerOfPatientID="HOSP", PatientName="Doe^J",
           OtherPatientIDsSequence=[_other("MRN7", "CLINIC")])  # fmt: skip
    # No issuer in the file: gets --issuer. Invalid date and sex are dropped.
    _write(root / "bob/x.dcm", PatientID="B2", PatientName="Roe^Bob", PatientBirthDate="19701340",
           PatientSex="Q")  # fmt: skip
    _write(root / "anon/y.dcm", PatientName="Nobody")  # no Patient ID
    (root / "notes.txt").write_text("not DICOM")
    (root / "jane/DICOMDIR.bak").write_bytes(b"\x00" * 200)
    # Deflated transfer syntax over bytes that do not inflate: pydicom cannot read it.
    deflated = b"1.2.840.10008.1.2.1.99"
    meta = b"\x02\x00\x10\x00UI" + len(deflated).to_bytes(2, "little") + deflated
    (root / "broken.dcm").write_bytes(b"\x00" * 128 + b"DICM" + meta + b"\xde\xad\xbe\xef" * 8)
    return root


async def test_import_tree(tree: Path, tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    conn = schema.connect_writer(path, create=True)
    writer.write_patients(conn, [PatientRecord("J1", "HOSP", name="Old^Name", facts=(KEEP_FACT,))])
    summary = dicom_import.import_dicom(conn, tree, issuer="SITE")
    conn.close()
    assert summary.files == 8
    assert summary.dicom == 5
    assert summary.not_dicom == 2
    assert summary.unreadable == 1
    assert summary.without_patient_id == 1
    assert summary.patients == 2
    assert (summary.added, summary.updated) == (1, 1)
    assert summary.invalid_values == 2
    assert summary.conflicts == 1
    assert "5 DICOM" in summary.describe()
    store = await PatientStore.open(path, readers=1)
    try:
        [jane] = await store.lookup("J1", "HOSP")
        [bob] = await store.lookup("B2")
    finally:
        await store.close()
    assert (jane.name, jane.birth_date, jane.sex) == ("Doe^Jane", "19700203", "F")
    assert jane.other_ids == (OtherPatientId("MRN7", "CLINIC", "TEXT"),)
    assert jane.facts == (KEEP_FACT,)  # clinical history already stored is kept
    assert (bob.issuer, bob.name, bob.birth_date, bob.sex) == ("SITE", "Roe^Bob", "", "")


def test_scan_is_read_only_and_ordered(tree: Path) -> None:
    records, summary = dicom_import.scan(tree)
    assert [(r.patient_id, r.issuer) for r in records] == [("B2", ""), ("J1", "HOSP")]
    assert summary.dicom == 5


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ImportFailed, match="not a directory"):
        dicom_import.scan(tmp_path / "absent")


def test_progress(tree: Path) -> None:
    seen: list[tuple[int, int]] = []
    dicom_import.scan(tree, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (8, 8)
