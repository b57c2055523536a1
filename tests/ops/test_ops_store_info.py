"""Which data a node serves: ``rpi_store_info``, ``rpi_store_patients`` and the load
time in ``/metrics``, changed by a reload, and the same digest in ``db stats``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import JANE, SAMPLE_RECORDS, UNICODE, make_db, server_settings
from tests.ops.ops_support import OpsServerThread
from tests.ops.test_ops_metrics import samples


def store_info(port: int) -> tuple[dict[str, str], float, float]:
    """(the labels of rpi_store_info, patients, load time)."""
    found = samples(port)
    infos = [dict(labels) for (name, labels), v in found.items() if name == "rpi_store_info"]
    assert len(infos) == 1
    patients = found[("rpi_store_patients", ())]
    loaded = found[("rpi_store_loaded_timestamp_seconds", ())]
    return infos[0], patients, loaded


def db_stats(path: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "rpi_async", "db", "stats", "--db", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_store_identity_in_metrics_and_db_stats(tmp_path: Path) -> None:
    live = make_db(tmp_path / "live.sqlite3")
    digest = hashlib.sha256(live.read_bytes()).hexdigest()[:16]
    stats = db_stats(live)
    assert stats["content"] == digest
    thread = OpsServerThread(server_settings(live, "native", metrics_port=0))
    thread.start()
    try:
        info, patients, loaded = store_info(thread.metrics_port)
        assert info == {
            "content": digest,
            "generation": str(stats["generation"]),
            "schema": str(stats["schema_version"]),
        }
        assert patients == len(SAMPLE_RECORDS)
        os.replace(make_db(tmp_path / "next.sqlite3", (JANE, UNICODE)), live)
        assert thread.call(thread.server.reload) is True
        info2, patients2, loaded2 = store_info(thread.metrics_port)
        assert info2["content"] == db_stats(live)["content"] != digest
        assert patients2 == 2
        assert loaded2 >= loaded
    finally:
        thread.stop()
