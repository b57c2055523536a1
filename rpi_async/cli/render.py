"""``rpi-async render``: show what the service would answer for one patient."""

from __future__ import annotations

import asyncio
import datetime
import json
from pathlib import Path
from typing import Annotated

import typer
from pydicom.dataset import Dataset

from rpi_async.cli import app, fail
from rpi_async.dicom.uids import SopClass
from rpi_async.errors import StoreError
from rpi_async.sr import registry
from rpi_async.sr.render import MAPPING_RESOURCE, render_identifier
from rpi_async.sr.text import content_tree_text
from rpi_async.store.model import PatientRecord
from rpi_async.store.reader import PatientStore

_SOP_CLASS = SopClass.GENERAL_RPI_QUERY


async def _lookup(db: Path, patient_id: str, issuer: str | None) -> list[PatientRecord]:
    store = await PatientStore.open(db, readers=1)
    try:
        return await store.lookup(patient_id, issuer)
    finally:
        await store.close()


def _request(patient_id: str, issuer: str | None, template_id: str) -> Dataset:
    request = Dataset()
    request.PatientName = ""
    request.PatientID = patient_id
    request.IssuerOfPatientID = issuer or ""
    request.PatientBirthDate = ""
    request.PatientSex = ""
    item = Dataset()
    item.MappingResource = MAPPING_RESOURCE
    item.TemplateIdentifier = template_id
    request.ContentTemplateSequence = [item]
    return request


@app.command()
def render(
    db: Annotated[Path, typer.Option("--db", help="Patient store (SQLite file).")],
    patient_id: Annotated[str, typer.Option("--patient-id", help="Patient ID to look up.")],
    issuer: Annotated[
        str | None, typer.Option("--issuer", help="Issuer of Patient ID (needed if ambiguous).")
    ] = None,
    template: Annotated[
        str,
        typer.Option(
            "--template",
            help="Root template: " + ", ".join(registry.supported(_SOP_CLASS)) + ".",
        ),
    ] = registry.default_template(_SOP_CLASS).tid,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the identifier in the DICOM JSON model.")
    ] = False,
) -> None:
    """Render one patient's Relevant Patient Information as the service would send it."""
    chosen = registry.resolve(_SOP_CLASS, MAPPING_RESOURCE, template)
    if chosen is None:
        known = ", ".join(registry.supported(_SOP_CLASS))
        raise fail(f"unknown template {template!r} (choose one of {known})")
    try:
        records = asyncio.run(_lookup(db, patient_id, issuer))
    except StoreError as exc:
        raise fail(str(exc)) from None
    where = f" with issuer {issuer!r}" if issuer is not None else ""
    if not records:
        raise fail(f"no patient with ID {patient_id!r}{where} in {db}")
    if len(records) > 1:
        raise fail(f"more than one patient with ID {patient_id!r}; give --issuer")
    identifier = render_identifier(
        records[0],
        chosen,
        _request(patient_id, issuer, chosen.tid),
        observation_datetime=datetime.datetime.now().replace(microsecond=0),
    )
    if as_json:
        typer.echo(json.dumps(identifier.to_json_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(content_tree_text(identifier))
