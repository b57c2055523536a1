"""Configuration and loading of the peer archives: Orthanc and DCMTK's dcmqrscp.

Both are given a configuration generated in the run's temporary directory, listen on
127.0.0.1 only, get ``TCP_NODELAY=1`` in their environment, and are loaded with the demo
instances over C-STORE by DCMTK's ``storescu`` once they are up. They answer Patient Root
C-FIND at PATIENT level, not RPI queries, so the generator uses ``--model patient-root``
against them: the same association pattern and patients, a comparable look-up.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ORTHANC = "/usr/sbin/Orthanc"
ORTHANC_AE = "ORTHANC"
ORTHANC_DICOM_THREADS = 32
DCMQRSCP_AE = "DCMQRSCP"
DCMQRSCP_MAX_ASSOCIATIONS = 2048
# storescu loads about 300 instances a second into Orthanc here (100,000 in 293 s): allow
# a generous multiple of that, so that a loaded population never times out half-way.
STORE_TIMEOUT_BASE = 120
STORE_SECONDS_PER_INSTANCE = 0.01


def dcmtk_tool(name: str) -> str | None:
    """DCMTK's tool, not a same-named script of a Python package earlier on PATH."""
    for directory in ("/usr/bin", "/usr/local/bin"):
        found = shutil.which(name, path=directory)
        if found:
            return found
    return None


def orthanc_config(workdir: Path, port: int, http_port: int) -> Path:
    """An Orthanc configuration with storage in ``workdir`` and no plugins."""
    storage = workdir / "orthanc-storage"
    storage.mkdir(parents=True, exist_ok=True)
    config = {
        "Name": "rpi-async-bench",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "StorageCompression": False,
        "Plugins": [],
        "DicomServerEnabled": True,
        "DicomAet": ORTHANC_AE,
        "DicomPort": port,
        "DicomCheckCalledAet": False,
        "DicomAlwaysAllowStore": True,
        "DicomAlwaysAllowFind": True,
        "DicomThreadsCount": ORTHANC_DICOM_THREADS,
        "UnknownSopClassAccepted": True,
        "HttpServerEnabled": True,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "LimitFindResults": 0,
        "LimitFindInstances": 0,
        "SaveJobs": False,
        # As an operator tuning Orthanc for C-FIND would: answer from the index (patient
        # tags are main DICOM tags) instead of reading stored files per match.
        "StorageAccessOnFind": "Never",
        "MetricsEnabled": False,
    }
    path = workdir / "orthanc.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def dcmqrscp_config(workdir: Path, port: int) -> Path:
    """A dcmqrscp configuration with one storage area in ``workdir``."""
    area = workdir / "dcmqrscp-db"
    area.mkdir(parents=True, exist_ok=True)
    text = f"""\
NetworkTCPPort  = {port}
MaxPDUSize      = 16384
MaxAssociations = {DCMQRSCP_MAX_ASSOCIATIONS}

HostTable BEGIN
HostTable END

VendorTable BEGIN
VendorTable END

AETable BEGIN
{DCMQRSCP_AE}   {area}   RW (1000000, 4096mb)   ANY
AETable END
"""
    path = workdir / "dcmqrscp.cfg"
    path.write_text(text, encoding="utf-8")
    return path


def store_instances(called_ae: str, port: int, files: Path, log: Path) -> None:
    """C-STORE every file of ``files`` to the peer in one association (DCMTK storescu)."""
    storescu = dcmtk_tool("storescu")
    if storescu is None:
        raise RuntimeError("DCMTK storescu is not installed")
    with log.open("ab") as out:
        args = ["-aec", called_ae, "-aet", "BENCHLOAD", "+sd", "127.0.0.1", str(port)]
        done = subprocess.run(
            [storescu, *args, str(files)],
            stdout=out,
            stderr=subprocess.STDOUT,
            # DCMTK reads TCP_NODELAY from the environment; without it each store waits
            # on a delayed ACK (about 40 ms an instance).
            env={**os.environ, "TCP_NODELAY": "1"},
            timeout=STORE_TIMEOUT_BASE
            + STORE_SECONDS_PER_INSTANCE * sum(1 for _ in files.iterdir()),
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"storescu to {called_ae} failed (exit {done.returncode}); see {log}")
