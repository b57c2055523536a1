"""Time ``rpi-async db import-fhir`` on a Synthea-shaped Bulk Data export.

Generates the export once (``benchmarks.fhir_population``, kept in ``--data``), then
imports it into a new database with the command a site would run, in a child process,
and reports the wall time, resources and facts per second and the importer's peak
resident memory (which stays flat with the export's size: pass 1 streams into an on-disk
spool, pass 2 holds one patient at a time).

    python -m benchmarks.fhir_import --patients 100000 --data /tmp/rpi/fhir100k \\
        --db /tmp/rpi/fhir100k.sqlite3
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.fhir_population import write_bulk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", type=Path, required=True, help="export directory (reused)")
    parser.add_argument("--db", type=Path, required=True, help="database to create")
    args = parser.parse_args()
    marker = args.data / f".complete-{args.patients}-{args.seed}"
    if not marker.exists():
        started = time.perf_counter()
        counts = write_bulk(args.data, args.patients, args.seed)
        marker.write_text(json.dumps(counts))
        print(
            f"generated {sum(counts.values()):,} resources in {time.perf_counter() - started:.1f} s"
        )
    counts = json.loads(marker.read_text())
    size = sum(p.stat().st_size for p in args.data.glob("*.ndjson"))
    for suffix in ("", "-wal", "-shm"):
        Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    command = [sys.executable, "-m", "rpi_async", "db", "import-fhir", str(args.data)]
    command += ["--db", str(args.db), "--create"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"import failed ({result.returncode}): {result.stderr.strip()}")
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak_kib = usage.ru_maxrss
    report = {
        "patients": args.patients,
        "resources": sum(counts.values()),
        "export_bytes": size,
        "seconds": round(seconds, 1),
        "cpu_user_s": round(usage.ru_utime, 1),
        "cpu_system_s": round(usage.ru_stime, 1),
        "load_average": [round(x, 1) for x in os.getloadavg()],
        "resources_per_s": round(sum(counts.values()) / seconds),
        "patients_per_s": round(args.patients / seconds),
        "peak_rss_mib": round(peak_kib / 1024),
        "database_bytes": args.db.stat().st_size,
        "cpus": os.cpu_count(),
        "output": result.stdout.strip(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
