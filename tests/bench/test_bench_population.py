"""The suite's own database holds the stored answers rpi-async's ``db`` commands write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from benchmarks.servers import population
from rpi_async.sr.render_bytes import fingerprint


def test_the_suite_database_has_this_versions_stored_answers(tmp_path: Path) -> None:
    records = population.demo_records(10)
    path = population.build_database(tmp_path / "demo.sqlite3", records)
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT renderer, count(*) FROM answer GROUP BY renderer").fetchall()
    conn.close()
    assert rows == [(fingerprint(), 3 * len(records))]  # TID 9007, 9000 and 3802 each
