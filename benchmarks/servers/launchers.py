"""The servers the suite compares, and how each is started, awaited and stopped.

``SERVERS`` is the table: a name, the command line for a port, the query model the
generator must use, the called AE title, an optional line that announces readiness, the
executables it needs and an optional loading step. Adding an rpi-async engine is one line
in ``RPI_ASYNC_ENGINES``.

A server runs in its own session (process group) with stdout and stderr on one pipe.
Readiness is awaited with a deadline: on its "listening" line when it prints one
(``select`` on the pipe, no sleeping), otherwise by connecting until the port accepts.
Then a ``cat`` child takes over the pipe and writes the rest to the server's log file, so
that the benchmark process never spends CPU on the server's output. ``stop`` sends
SIGTERM to the group, and SIGKILL if it has not exited in a few seconds; it runs on every
exit path of the suite.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from benchmarks.servers import peers
from rpi_async.bench.identifier import QueryModel

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
READY_DEADLINE = 60.0
STOP_GRACE = 5.0
CONNECT_RETRY = 0.05


@dataclass(frozen=True)
class Workspace:
    """The run's temporary directory with the demo population in both forms."""

    root: Path
    db: Path
    files: Path
    patients: int  # in the SQLite database
    file_patients: int  # as DICOM files (toy, Orthanc, dcmqrscp): the first N of them


@dataclass(frozen=True)
class ServerSpec:
    name: str
    command: Callable[[Workspace, int], list[str]]
    model: QueryModel = QueryModel.RPI
    called_ae: str = "RPI_SCP"
    ready_pattern: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    load: Callable[[Workspace, int, Path], None] | None = None
    note: str = ""
    uses_files: bool = False  # serves the DICOM files, not the SQLite database
    # The most patients it can be given within the suite's time; beyond, it is skipped.
    max_population: int | None = None

    def population(self, ws: Workspace) -> int:
        """How many demo patients this server holds (hits are drawn from them)."""
        return ws.file_patients if self.uses_files else ws.patients

    def unavailable(self, ws: Workspace | None = None) -> str | None:
        """Why this server cannot run here (with this workspace's population), or None."""
        if ws is not None and self.max_population is not None:
            held = self.population(ws)
            if held > self.max_population:
                return f"{held} patients is more than it can load in time ({self.max_population})"
        for tool in self.requires:
            if not (Path(tool).is_file() if tool.startswith("/") else peers.dcmtk_tool(tool)):
                return f"{tool} is not installed"
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
    return port


def _python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _null(ws: Workspace, port: int) -> list[str]:
    return _python("benchmarks.servers.null_scp", "--port", str(port))


def _toy(ws: Workspace, port: int) -> list[str]:
    return _python("benchmarks.servers.toy_scp", "--dir", str(ws.files), "--port", str(port))


def _pynetdicom_sqlite(ws: Workspace, port: int) -> list[str]:
    args = ("--db", str(ws.db), "--port", str(port))
    return _python("benchmarks.servers.pynetdicom_sqlite_scp", *args)


def _pynetdicom_answer(ws: Workspace, port: int) -> list[str]:
    args = ("--db", str(ws.db), "--port", str(port))
    return _python("benchmarks.servers.pynetdicom_answer_scp", *args)


# The schema version the baseline checkout knows: the suite's database is copied with this
# version for it. Valid while the later versions only add tables (3 adds the FHIR ones).
BASELINE_SCHEMA_ENV = "RPI_BENCH_BASELINE_SCHEMA"


def _baseline_copy(ws: Workspace) -> Path:
    """The suite's database, with the schema version the baseline checkout reads."""
    copy = ws.root / "baseline.sqlite3"
    if not copy.exists():
        shutil.copyfile(ws.db, copy)
        conn = sqlite3.connect(copy)
        try:
            version = int(os.environ.get(BASELINE_SCHEMA_ENV, "2"))
            conn.execute(f"PRAGMA user_version = {version}")
            conn.commit()
        finally:
            conn.close()
    return copy


# A checkout of an earlier rpi-async (``git worktree add DIR COMMIT``) to run beside this
# one: the suite's ``rpi-async-baseline-*`` servers run its code with this environment.
BASELINE_ENV = "RPI_BENCH_BASELINE"


def _rpi_async(
    engine_args: tuple[str, ...], *, baseline: bool = False
) -> Callable[[Workspace, int], list[str]]:
    def command(ws: Workspace, port: int) -> list[str]:
        serve = ("serve", "--db", str(ws.db), "--host", HOST, "--port", str(port))
        # The native engine runs on its defaults (limits sized at start admit 1,024
        # clients from one address). The load generator is one peer: the pynetdicom
        # engine's per-peer default (half its workers) would refuse it, and the baseline
        # had max_associations 64.
        limits: tuple[str, ...] = ()
        if baseline:
            limits = ("--max-associations", "2048", "--max-associations-per-peer", "0")
        elif "pynetdicom" in engine_args:
            limits = ("--max-associations-per-peer", "0")
        args = (*serve, *limits, *engine_args)
        if not baseline:
            return _python("rpi_async", *args)
        tree = os.environ.get(BASELINE_ENV, "")
        args = (*serve[:2], str(_baseline_copy(ws)), *args[3:])
        run = (
            f"import sys, runpy; sys.path.insert(0, {tree!r}); "
            "runpy.run_module('rpi_async', run_name='__main__')"
        )
        return [sys.executable, "-c", run, *args]

    return command


def _answer_once(ws: Workspace, port: int) -> list[str]:
    serve = ("serve", "--db", str(ws.db), "--host", HOST, "--port", str(port))
    return _python("benchmarks.servers.answer_once_scp", *serve, "--engine", "native")


def _orthanc(ws: Workspace, port: int) -> list[str]:
    return [peers.ORTHANC, str(peers.orthanc_config(ws.root, port, free_port()))]


def _dcmqrscp(ws: Workspace, port: int) -> list[str]:
    tool = peers.dcmtk_tool("dcmqrscp") or "dcmqrscp"
    return [tool, "-c", str(peers.dcmqrscp_config(ws.root, port))]


def _store_to(called_ae: str) -> Callable[[Workspace, int, Path], None]:
    def load(ws: Workspace, port: int, log: Path) -> None:
        peers.store_instances(called_ae, port, ws.files, log)

    return load


# One line per rpi-async engine configuration: suite name -> extra `rpi-async serve` args.
RPI_ASYNC_ENGINES: dict[str, tuple[str, ...]] = {
    "rpi-async-pynetdicom": ("--engine", "pynetdicom"),
    "rpi-async-native": ("--engine", "native"),
    "rpi-async-native-w2": ("--engine", "native", "--workers", "2"),
}

_PEER_ENV = {"TCP_NODELAY": "1"}

SERVERS: dict[str, ServerSpec] = {
    "null": ServerSpec(
        "null",
        _null,
        ready_pattern="listening on",
        note="canned replies, no DICOM parsing: the load generator's own ceiling",
    ),
    "toy": ServerSpec(
        "toy",
        _toy,
        ready_pattern="listening on",
        uses_files=True,
        max_population=10_000,  # it reads every file per query: 0.9 assoc/s at 2,000
        note="pynetdicom documentation's toy SCP: reads every file per query",
    ),
    "pynetdicom-sqlite": ServerSpec(
        "pynetdicom-sqlite",
        _pynetdicom_sqlite,
        ready_pattern="listening on",
        note="plain pynetdicom + sqlite3, TCP_NODELAY, 2048 associations, backlog 4096",
    ),
    "pynetdicom-answer": ServerSpec(
        "pynetdicom-answer",
        _pynetdicom_answer,
        ready_pattern="listening on",
        note="stock pynetdicom yielding one rendered TID 9007 answer (pydicom encodes it)",
    ),
    **{
        name: ServerSpec(
            name,
            _rpi_async(args),
            ready_pattern="listening on",
            note=f"rpi-async serve {' '.join(args)}",
        )
        for name, args in RPI_ASYNC_ENGINES.items()
    },
    **{
        f"rpi-async-baseline-{name.removeprefix('rpi-async-')}": ServerSpec(
            f"rpi-async-baseline-{name.removeprefix('rpi-async-')}",
            _rpi_async(args, baseline=True),
            ready_pattern="listening on",
            requires=(f"{os.environ.get(BASELINE_ENV) or '/nonexistent'}/rpi_async/__init__.py",),
            note=f"the ${BASELINE_ENV} checkout: rpi-async serve {' '.join(args)}",
        )
        for name, args in RPI_ASYNC_ENGINES.items()
    },
    "rpi-async-native-answer-once": ServerSpec(
        "rpi-async-native-answer-once",
        _answer_once,
        ready_pattern="listening on",
        note="rpi-async serve --engine native answering every query with its first answer: "
        "the associations' own ceiling, without the query path",
    ),
    "orthanc": ServerSpec(
        "orthanc",
        _orthanc,
        model=QueryModel.PATIENT_ROOT,
        called_ae=peers.ORTHANC_AE,
        ready_pattern="Orthanc has started",
        env=_PEER_ENV,
        requires=(peers.ORTHANC, "storescu"),
        load=_store_to(peers.ORTHANC_AE),
        uses_files=True,
        note=f"Orthanc, patient-root C-FIND, DicomThreadsCount {peers.ORTHANC_DICOM_THREADS}",
    ),
    "dcmqrscp": ServerSpec(
        "dcmqrscp",
        _dcmqrscp,
        model=QueryModel.PATIENT_ROOT,
        called_ae=peers.DCMQRSCP_AE,
        env=_PEER_ENV,
        requires=("dcmqrscp", "storescu"),
        load=_store_to(peers.DCMQRSCP_AE),
        uses_files=True,
        # Its index is rewritten per stored instance: about 5 stores a second near 100,000.
        max_population=10_000,
        note="DCMTK dcmqrscp, patient-root C-FIND, a process per association",
    ),
}


class ServerUnavailable(Exception):
    """The server could not be started here; the message says why in one line."""


class ServerProcess:
    """One running server; use as a context manager so it is always stopped."""

    def __init__(self, spec: ServerSpec, ws: Workspace, log: Path) -> None:
        self.spec = spec
        self.ws = ws
        self.log = log
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.drain: subprocess.Popen[bytes] | None = None
        self.tail: deque[str] = deque(maxlen=20)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> ServerProcess:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        command = self.spec.command(self.ws, self.port)
        env = {**os.environ, **self.spec.env}
        # The baseline servers are modules of this checkout's ``benchmarks`` package.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p
        )
        try:
            self.process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.ws.root,
                start_new_session=True,
            )
        except OSError as exc:
            raise ServerUnavailable(f"cannot run {command[0]}: {exc.strerror}") from None
        assert self.process.stdout is not None
        with self.log.open("wb") as out:
            self._await_ready(self.process, self.process.stdout, out)
        self._hand_over(self.process.stdout)
        if self.spec.load is not None:
            self.spec.load(self.ws, self.port, self.log)

    def _await_ready(
        self, process: subprocess.Popen[bytes], stdout: IO[bytes], out: IO[bytes]
    ) -> None:
        pattern = re.compile(self.spec.ready_pattern) if self.spec.ready_pattern else None
        deadline = time.monotonic() + READY_DEADLINE
        partial = b""
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise ServerUnavailable(f"not ready within {READY_DEADLINE:g} s")
                if pattern is None and _accepts(HOST, self.port):
                    return
                wait = remaining if pattern is not None else min(CONNECT_RETRY, remaining)
                if selector.select(timeout=wait):
                    data = os.read(stdout.fileno(), 65536)
                    if not data:
                        process.wait(STOP_GRACE)
                    out.write(data)
                    partial += data
                    *lines, partial = partial.split(b"\n")
                    for line in lines:
                        text = line.decode("utf-8", "replace").rstrip()
                        self.tail.append(text)
                        if pattern is not None and pattern.search(text):
                            return
                if process.poll() is not None:
                    reason = _reason(self.tail)
                    raise ServerUnavailable(f"exited with code {process.returncode}: {reason}")

    def _hand_over(self, stdout: IO[bytes]) -> None:
        """Let a ``cat`` child copy the rest of the server's output to the log file."""
        with self.log.open("ab") as out:
            self.drain = subprocess.Popen(["cat"], stdin=stdout, stdout=out)
        stdout.close()

    def stop(self) -> None:
        process = self.process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process is not None:
            # Children of a server (worker processes, dcmqrscp's forks) go with it.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            if process.stdout is not None and not process.stdout.closed:
                process.stdout.close()
        if self.drain is not None:
            try:
                self.drain.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.drain.kill()
                self.drain.wait()


_FRAME = "│┃╭╮╰╯─━ "


def _reason(tail: deque[str]) -> str:
    """The most telling line of a failed start: an error line, else the last text line."""
    lines = [t.strip(_FRAME) for t in tail]
    lines = [t for t in lines if any(c.isalnum() for c in t)]
    for line in reversed(lines):
        if "error" in line.lower() or "no such option" in line.lower():
            return line
    return lines[-1] if lines else "no output"


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False
