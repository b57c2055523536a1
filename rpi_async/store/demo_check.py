"""Whether a database holds patients other than the synthetic demo population.

``rpi-async db demo`` adds synthetic patients; into a site's database that would mix
made-up people with real ones, so it first counts the patients that are not demo ones.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rpi_async.store import demo_data as d
from rpi_async.store import schema

_NON_DEMO = f"""
SELECT count(*) FROM patient
 WHERE NOT (issuer = ?1 AND patient_id LIKE ?2 ESCAPE '\\')
   AND NOT (patient_id = ?3 AND issuer IN ({", ".join("?" for _ in d.DUPLICATE_ISSUERS)}))
"""


def non_demo_patients(path: Path) -> int:
    """Patients in ``path`` that ``db demo`` did not write (read-only; 0 without a schema).

    Raises StoreError or sqlite3.Error for a file that is not a usable database.
    """
    schema.check_file(path)
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if schema.check_version(conn, path) == 0:
            return 0
        prefix = d.DEMO_ID_PREFIX.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        args = (d.DEMO_ISSUER, f"{prefix}%", d.DUPLICATE_ID, *d.DUPLICATE_ISSUERS)
        return int(conn.execute(_NON_DEMO, args).fetchone()[0])
    finally:
        conn.close()
