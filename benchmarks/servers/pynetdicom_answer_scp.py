"""A stock pynetdicom RPI SCP that answers every query with the same rendered answer.

The peer that shows what pynetdicom itself costs: a pynetdicom AE as its documentation
builds one (a thread per association, the handler yields a Dataset that pynetdicom
encodes), with the settings a careful operator adds (TCP_NODELAY, 2048 associations, a
listen backlog of 4096). At start it renders one demo patient's TID 9007 answer with
rpi-async's renderer (the answer rpi-async sends for that patient) and yields that
Dataset for every C-FIND: no lookup, no rendering per query, only pynetdicom and pydicom.

Run: ``python -m benchmarks.servers.pynetdicom_answer_scp --db PATH --port PORT``. It
prints ``listening on HOST:PORT`` once bound and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from benchmarks.servers.pynetdicom_sqlite_scp import arguments, serve_tuned
from rpi_async import scu
from rpi_async.dicom.status import FindStatus
from rpi_async.sr.registry import TEMPLATES
from rpi_async.sr.render import render_identifier
from rpi_async.store.reader import lookup_compact_now

PATIENT = "DEMO000001"


def the_answer(db: Path) -> Dataset:
    """The TID 9007 answer to a query for ``PATIENT``, as rpi-async renders it."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        patient = lookup_compact_now(conn, PATIENT)[0]
    finally:
        conn.close()
    request = scu.build_request(PATIENT)
    return render_identifier(
        patient, TEMPLATES["9007"], request, observation_datetime=datetime.now().astimezone()
    )


def handler(answer: Dataset) -> Any:
    def handle_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        yield FindStatus.PENDING, answer

    return handle_find


def main() -> None:
    args = arguments(__doc__.splitlines()[0])
    serve_tuned(args, handler(the_answer(args.db)))


if __name__ == "__main__":
    main()
