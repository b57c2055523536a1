"""The toy RPI Query SCP of pynetdicom's documentation, as a baseline.

As in the example: a pynetdicom AE with default settings whose C-FIND handler reads every
DICOM file of a directory for each query, matches on Patient ID (and Issuer when given),
and yields a minimal identifier for one match or C100 for more than one.

Run: ``python -m benchmarks.servers.toy_scp --dir DIR --port PORT``. It prints
``listening on HOST:PORT`` once the socket is bound and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import signal
from collections.abc import Iterator
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, evt

from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import RPI_SOP_CLASSES


def create_template(match: Dataset, query: Dataset) -> Dataset:
    """A minimal response identifier: the query's keys filled from the match."""
    ds = Dataset()
    ds.PatientName = match.get("PatientName", "")
    ds.PatientID = match.PatientID
    if "IssuerOfPatientID" in query:
        ds.IssuerOfPatientID = match.get("IssuerOfPatientID", "")
    ds.ContentTemplateSequence = query.get("ContentTemplateSequence", [])
    ds.ValueType = "CONTAINER"
    return ds


def handler(directory: str) -> Any:
    def handle_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        query = event.identifier
        instances = [dcmread(os.path.join(directory, name)) for name in os.listdir(directory)]
        issuer = query.get("IssuerOfPatientID")
        matching = [
            inst
            for inst in instances
            if inst.PatientID == query.PatientID
            and (not issuer or inst.get("IssuerOfPatientID") == issuer)
        ]
        if len(matching) == 1:
            yield FindStatus.PENDING, create_template(matching[0], query)
        elif len(matching) > 1:
            yield FindStatus.MORE_THAN_ONE_MATCH, None

    return handle_find


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ae-title", default="RPI_SCP")
    args = parser.parse_args()
    # Block the stop signals before any thread starts, then wait for one of them.
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    ae = AE(ae_title=args.ae_title)
    for uid in RPI_SOP_CLASSES:
        ae.add_supported_context(uid)
    server = ae.start_server(
        (args.host, args.port),
        block=False,
        evt_handlers=[(evt.EVT_C_FIND, handler(args.dir))],
    )
    assert server is not None
    print(f"listening on {args.host}:{args.port}", flush=True)
    signal.sigwait(stop)
    server.shutdown()


if __name__ == "__main__":
    main()
