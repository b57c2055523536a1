"""A plain pynetdicom RPI SCP over SQLite: what a careful operator would build by hand.

The fair baseline: the same demo database as rpi-async, a synchronous sqlite3 look-up on
the indexed ``(patient_id, issuer)`` key in pynetdicom's per-association handler thread
(one read-only connection per thread), TCP_NODELAY on every accepted socket, up to 2048
simultaneous associations and a listen backlog of 4096. It answers with the patient's
demographics and the Content Template Sequence, but renders no SR content: it does less
work per query than rpi-async.

Run: ``python -m benchmarks.servers.pynetdicom_sqlite_scp --db PATH --port PORT``. It
prints ``listening on HOST:PORT`` once bound and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.transport import ThreadedAssociationServer

from rpi_async.dicom.status import FindStatus
from rpi_async.dicom.uids import RPI_SOP_CLASSES

MAX_ASSOCIATIONS = 2048
LISTEN_BACKLOG = 4096

_LOOKUP = (
    "SELECT patient_id, issuer, name, birth_date, sex FROM patient "
    "WHERE patient_id = ?1 AND (?2 IS NULL OR issuer = ?2) LIMIT 2"
)


class Lookup:
    """One read-only sqlite3 connection per handler thread."""

    def __init__(self, path: Path) -> None:
        self.uri = f"{path.resolve().as_uri()}?mode=ro"
        self.local = threading.local()

    def find(self, patient_id: str, issuer: str | None) -> list[tuple[str, str, str, str, str]]:
        conn = getattr(self.local, "conn", None)
        if conn is None:
            conn = self.local.conn = sqlite3.connect(self.uri, uri=True)
        return list(conn.execute(_LOOKUP, (patient_id, issuer)))


def on_conn_open(event: Any) -> None:
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def handler(lookup: Lookup) -> Any:
    def handle_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        query = event.identifier
        issuer = query.get("IssuerOfPatientID") or None
        rows = lookup.find(str(query.PatientID), issuer)
        if len(rows) > 1:
            yield FindStatus.MORE_THAN_ONE_MATCH, None
        elif rows:
            patient_id, found_issuer, name, birth_date, sex = rows[0]
            ds = Dataset()
            ds.PatientName = name
            ds.PatientID = patient_id
            if "IssuerOfPatientID" in query:
                ds.IssuerOfPatientID = found_issuer
            ds.PatientBirthDate = birth_date
            ds.PatientSex = sex
            ds.ContentTemplateSequence = query.get("ContentTemplateSequence", [])
            ds.ValueType = "CONTAINER"
            yield FindStatus.PENDING, ds

    return handle_find


def arguments(description: str) -> argparse.Namespace:
    """--db, --host, --port, --ae-title: what the suite passes to a pynetdicom peer."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ae-title", default="RPI_SCP")
    return parser.parse_args()


def serve_tuned(args: argparse.Namespace, find_handler: Any) -> None:
    """A pynetdicom AE with the careful operator's settings, until SIGTERM or SIGINT."""
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    ThreadedAssociationServer.request_queue_size = LISTEN_BACKLOG
    ae = AE(ae_title=args.ae_title)
    ae.maximum_associations = MAX_ASSOCIATIONS
    for uid in RPI_SOP_CLASSES:
        ae.add_supported_context(uid)
    server = ae.start_server(
        (args.host, args.port),
        block=False,
        evt_handlers=[(evt.EVT_CONN_OPEN, on_conn_open), (evt.EVT_C_FIND, find_handler)],
    )
    assert server is not None
    print(f"listening on {args.host}:{args.port}", flush=True)
    signal.sigwait(stop)
    server.shutdown()


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    serve_tuned(args, handler(Lookup(args.db)))


if __name__ == "__main__":
    main()
