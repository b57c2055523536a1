"""HAProxy as a child of a test (``haproxy -f deploy/haproxy.cfg -db``), and a steady
load of C-FINDs through it from threads."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pynetdicom import AE

from rpi_async import scu
from rpi_async.dicom.uids import SopClass

CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "haproxy.cfg"


def haproxy_binary() -> str | None:
    return shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HAProxy:
    """HAProxy in the foreground on the project's configuration, its admin socket at hand."""

    def __init__(self, binary: str, work: Path, env: dict[str, str]) -> None:
        self.admin = work / "haproxy.sock"
        self.log = work / "haproxy.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [binary, "-f", str(CONFIG), "-db"],
                env={
                    "PATH": "/usr/sbin:/usr/bin:/bin",
                    **env,
                    "RPI_HAPROXY_ADMIN": str(self.admin),
                },
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def command(self, text: str) -> str:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(5)
            sock.connect(str(self.admin))
            sock.sendall(text.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def states(self) -> dict[str, str]:
        """Server name -> status (UP, DOWN, ...) of the rpi_nodes backend."""
        try:
            text = self.command("show stat")
        except OSError:
            return {}
        out = {}
        for line in text.splitlines():
            cols = line.split(",")
            if len(cols) > 17 and cols[0] == "rpi_nodes" and cols[1] not in ("BACKEND",):
                out[cols[1]] = cols[17]
        return out

    def wait_state(self, server: str, state: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.states().get(server, "").startswith(state):
                return
            if self.proc.poll() is not None:
                raise AssertionError("haproxy exited:\n" + self.log.read_text())
            time.sleep(0.1)
        raise AssertionError(f"server {server} not {state} within {timeout} s: {self.states()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@dataclass
class Load:
    """``clients`` threads, each doing one association with one C-FIND after another
    (from ``source``, a loopback address of its own), until stopped or ``limit`` each."""

    port: int
    patient_id: str
    source: str
    clients: int = 4
    limit: int = 5000
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for i in range(self.clients):
            thread = threading.Thread(target=self._run, name=f"load-{i}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self) -> None:
        ae = AE(ae_title="MODALITY1")
        ae.add_requested_context(SopClass.GENERAL_RPI_QUERY)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = 10
        request = scu.build_request(self.patient_id, "HOSP_A")
        for _ in range(self.limit):
            if self._stop.is_set():
                return
            failure = None
            assoc = ae.associate(
                "127.0.0.1", self.port, ae_title="RPI_SCP", bind_address=(self.source, 0)
            )
            if not assoc.is_established:
                failure = "association not established"
            else:
                statuses = [
                    int(s.Status)
                    for s, _ in assoc.send_c_find(request, SopClass.GENERAL_RPI_QUERY)
                    if s
                ]
                if statuses != [0xFF00, 0x0000]:
                    failure = f"statuses {statuses}"
                if assoc.is_established:
                    assoc.release()
                if not assoc.is_released:
                    failure = failure or "not released"
            with self._lock:
                if failure is None:
                    self.ok += 1
                else:
                    self.failures.append(failure)

    def wait_ok(self, count: int, timeout: float = 60) -> None:
        """Until ``count`` more associations succeeded."""
        target = self.ok + count
        deadline = time.monotonic() + timeout
        while self.ok < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"load stalled at {self.ok} (failures {self.failures[:3]})")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)
