"""The demo population every server under test is loaded with.

The same patients for everyone: ``DEMO000001``... and the ``DEMO-DUP`` pair (under
ISSUER_A and ISSUER_B), from ``rpi_async.store.demo`` when it is present. They go into an
SQLite store, with rpi-async's stored answers (for rpi-async and the pynetdicom-sqlite
baseline), and into one small DICOM instance per patient (for the toy SCP, which reads a
directory, and for the peers, which are loaded over C-STORE). The instances are Secondary
Capture images of 1x1 pixel: the smallest thing every archive stores and indexes at
patient level.
"""

from __future__ import annotations

from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from rpi_async.sr.prerender import prerender
from rpi_async.store.model import PatientRecord
from rpi_async.store.schema import connect_writer
from rpi_async.store.writer import write_patients

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
DUP_ID = "DEMO-DUP"
DUP_ISSUERS = ("ISSUER_A", "ISSUER_B")


def demo_records(count: int) -> list[PatientRecord]:
    """The demo population, or a minimal stand-in with the same IDs if it is unavailable."""
    try:
        from rpi_async.store import demo

        return list(demo.generate(count))
    except (ImportError, AttributeError):
        records = [
            PatientRecord(patient_id=f"DEMO{n:06d}", issuer="DEMO", name=f"Demo^{n}", sex="F")
            for n in range(1, count + 1)
        ]
        records += [
            PatientRecord(patient_id=DUP_ID, issuer=issuer, name=f"Dup^{issuer}")
            for issuer in DUP_ISSUERS
        ]
        return records


def build_database(path: Path, records: list[PatientRecord]) -> Path:
    """Write the records to a new SQLite store at ``path``, with their stored answers, as
    rpi-async's ``db`` commands write a store (without them it renders every hit live)."""
    conn = connect_writer(path, create=True)
    try:
        write_patients(conn, records)
        prerender(conn, path)
    finally:
        conn.close()
    return path


def instance(record: PatientRecord) -> Dataset:
    """One Secondary Capture instance of this patient, with deterministic UIDs."""
    key = [record.patient_id, record.issuer]
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[*key, "instance"])
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[*key, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[*key, "series"])
    ds.PatientName = record.name
    ds.PatientID = record.patient_id
    ds.IssuerOfPatientID = record.issuer
    ds.PatientBirthDate = record.birth_date
    ds.PatientSex = record.sex
    ds.StudyDate = "20240101"
    ds.StudyID = "1"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""
    ds.Modality = "OT"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ConversionType = "WSD"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = 1
    ds.Columns = 1
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = b"\x00\x00"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def write_instances(directory: Path, records: list[PatientRecord]) -> Path:
    """One DICOM file per record in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for number, record in enumerate(records, start=1):
        instance(record).save_as(directory / f"{number:07d}.dcm", enforce_file_format=True)
    return directory
