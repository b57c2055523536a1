"""``rpi-async query`` and ``rpi-async echo``: the SCU side, for operators."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydicom import dcmwrite
from pydicom.dataset import FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from rpi_async.cli import EXIT_DICOM_FAILURE, app, fail
from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import SOP_CLASS_BY_NAME
from rpi_async.errors import RpiError

AecOpt = Annotated[str, typer.Option("--aec", help="called AE title (the SCP's)")]
AetOpt = Annotated[str, typer.Option("--aet", help="our calling AE title")]
TimeoutOpt = Annotated[float, typer.Option(help="seconds to wait for the peer")]
TlsOpt = Annotated[bool, typer.Option("--tls", help="DICOM over TLS (implied by --tls-*)")]
TlsCaOpt = Annotated[
    Path | None, typer.Option("--tls-ca", help="PEM CA certificates to verify the server with")
]
TlsCertOpt = Annotated[
    Path | None, typer.Option("--tls-cert", help="PEM client certificate (mutual TLS)")
]
TlsKeyOpt = Annotated[
    Path | None, typer.Option("--tls-key", help="PEM key of --tls-cert, if not in that file")
]


def tls_context(tls: bool, ca: Path | None, cert: Path | None, key: Path | None) -> Any:
    """The client's ``ssl.SSLContext`` for the ``--tls*`` flags, or None (plain DICOM)."""
    if not (tls or ca or cert or key):
        return None
    from rpi_async.ops.tls import client_context

    try:
        return client_context(ca, cert, key)
    except RpiError as exc:
        raise fail(str(exc)) from None


@app.command()
def query(
    host: str,
    port: int,
    patient_id: Annotated[str, typer.Option("--patient-id", help="Patient ID to look up")],
    issuer: Annotated[str | None, typer.Option(help="Issuer of Patient ID")] = None,
    template: Annotated[str | None, typer.Option(help="template: 9007, 9000, 3802")] = None,
    sop: Annotated[str, typer.Option(help="general, breast or cardiac")] = "general",
    aec: AecOpt = "RPI_SCP",
    aet: AetOpt = "RPI_SCU",
    as_json: Annotated[bool, typer.Option("--json", help="print DICOM JSON")] = False,
    save: Annotated[Path | None, typer.Option(help="save the identifier as a DICOM file")] = None,
    timeout: TimeoutOpt = 30.0,
    tls: TlsOpt = False,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> None:
    """Send one Relevant Patient Information Query and print the answer."""
    from rpi_async import scu
    from rpi_async.sr.text import content_tree_text

    if sop not in SOP_CLASS_BY_NAME:
        raise fail(f"unknown --sop {sop!r}; choose general, breast or cardiac")
    sop_class = SOP_CLASS_BY_NAME[sop]
    default_template = {"general": "9007", "breast": "9000", "cardiac": "3802"}[sop]
    request = scu.build_request(patient_id, issuer, template or default_template)
    context = tls_context(tls, tls_ca, tls_cert, tls_key)
    try:
        responses = scu.find(
            host,
            port,
            request,
            sop_class=sop_class,
            aec=aec,
            aet=aet,
            timeout=timeout,
            tls=context,
        )
    except RpiError as exc:
        raise fail(str(exc)) from None
    final = FindStatus.SUCCESS.value
    for rsp in responses:
        line = f"status {FindStatus.describe(rsp.status)}"
        if rsp.error_comment:
            line += f" - {rsp.error_comment}"
        if rsp.offending_elements:
            line += " offending " + ", ".join(
                f"({t >> 16:04X},{t & 0xFFFF:04X})" for t in rsp.offending_elements
            )
        typer.echo(line, err=as_json)
        if rsp.identifier is not None:
            if as_json:
                typer.echo(json.dumps(rsp.identifier.to_json_dict(), indent=2))
            else:
                typer.echo(content_tree_text(rsp.identifier))
            if save is not None:
                _save(rsp.identifier, save, str(sop_class))
        final = rsp.status
    if not responses:
        raise fail("no response")
    if final != FindStatus.SUCCESS:
        raise typer.Exit(EXIT_DICOM_FAILURE)


def _save(identifier: object, path: Path, sop_class: str) -> None:
    from pydicom.dataset import Dataset

    assert isinstance(identifier, Dataset)
    ds = Dataset()
    ds.update(identifier)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    try:
        dcmwrite(path, ds, enforce_file_format=True)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from None


@app.command()
def echo(
    host: str,
    port: int,
    aec: AecOpt = "RPI_SCP",
    aet: AetOpt = "RPI_SCU",
    timeout: TimeoutOpt = 30.0,
    tls: TlsOpt = False,
    tls_ca: TlsCaOpt = None,
    tls_cert: TlsCertOpt = None,
    tls_key: TlsKeyOpt = None,
) -> None:
    """Verify a DICOM node with C-ECHO."""
    from rpi_async import scu

    context = tls_context(tls, tls_ca, tls_cert, tls_key)
    try:
        status = scu.echo(host, port, aec=aec, aet=aet, timeout=timeout, tls=context)
    except RpiError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"C-ECHO status 0x{status:04X}")
    if status != 0:
        raise typer.Exit(EXIT_DICOM_FAILURE)
