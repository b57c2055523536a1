"""``rpi-async serve`` as an operator runs it: a real process, signals, exit codes."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpi_async import scu
from tests.conftest import make_db
from tests.serve_process import ServeProcess


@pytest.fixture
def serve_process() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for proc in started:
        proc.kill()


def start(
    started: list[ServeProcess], *args: str, env: dict[str, str] | None = None
) -> ServeProcess:
    proc = ServeProcess(list(args), env)
    started.append(proc)
    return proc


@pytest.mark.network
@pytest.mark.parametrize("engine", ["pynetdicom", "native"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_and_stop_gracefully(
    tmp_path: Path, serve_process: list[ServeProcess], engine: str, sig: int
) -> None:
    db = make_db(tmp_path / "db.sqlite3")
    proc = start(serve_process, "--db", str(db), "--port", "0", "--engine", engine)
    port = proc.wait_listening()
    responses = scu.find("127.0.0.1", port, scu.build_request("P0001", "HOSP_A"), timeout=10)
    assert [r.status for r in responses] == [0xFF00, 0]
    assert proc.stop(sig) == 0
    text = "".join(proc.output)
    assert "Traceback" not in text
    assert "rpi-async stopped: 1 associations, 1 queries" in text
    assert "P0001" not in text
    assert "Doe" not in text


@pytest.mark.network
def test_serve_demo_creates_database_once(
    tmp_path: Path, serve_process: list[ServeProcess]
) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    proc = start(serve_process, "--demo", "--demo-patients", "50", "--port", "0", env=env)
    port = proc.wait_listening()
    demo = tmp_path / "data" / "rpi-async" / "demo.sqlite3"
    assert demo.exists()
    ok = scu.find("127.0.0.1", port, scu.build_request("DEMO000001"), timeout=10)
    assert [r.status for r in ok] == [0xFF00, 0]
    dup = scu.find("127.0.0.1", port, scu.build_request("DEMO-DUP"), timeout=10)
    assert [r.status for r in dup] == [0xC100]
    assert proc.stop() == 0
    mtime = demo.stat().st_mtime_ns
    again = start(serve_process, "--demo", "--port", "0", env=env)
    again.wait_listening()
    assert again.stop() == 0
    assert demo.stat().st_mtime_ns == mtime
    assert "creating demo database" not in "".join(again.output)
    # Served as a lookup and a splice: every patient's stored answers, this version's.
    assert "db prerender" not in "".join(proc.output) + "".join(again.output)
    with sqlite3.connect(demo) as conn:
        [(renderers,)] = conn.execute("SELECT count(DISTINCT renderer) FROM answer").fetchall()
        [(stored,)] = conn.execute("SELECT count(*) FROM answer").fetchall()
    conn.close()
    assert renderers == 1
    assert stored == 3 * 52  # TID 9007, 9000 and 3802 for 50 patients and the DEMO-DUP pair


@pytest.mark.network
def test_serve_demo_renders_answers_an_earlier_version_left(
    tmp_path: Path, serve_process: list[ServeProcess]
) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data")}
    demo = tmp_path / "data" / "rpi-async" / "demo.sqlite3"
    demo.parent.mkdir(parents=True)
    make_db(demo)
    with sqlite3.connect(demo) as conn:
        conn.execute("UPDATE answer SET renderer = '0123456789abcdef'")
    conn.close()
    proc = start(serve_process, "--demo", "--port", "0", env=env)
    proc.wait_listening()
    assert proc.stop() == 0
    text = "".join(proc.output)
    assert "stored " in text
    assert "rendered answers" in text
    assert "db prerender" not in text  # no warning: the answers are this version's again
    with sqlite3.connect(demo) as conn:
        old = conn.execute("SELECT count(*) FROM answer WHERE renderer = '0123456789abcdef'")
        assert old.fetchall() == [(0,)]
    conn.close()


@pytest.mark.network
def test_workers_share_the_port_and_a_dead_worker_is_replaced(
    tmp_path: Path, serve_process: list[ServeProcess]
) -> None:
    db = make_db(tmp_path / "db.sqlite3")
    proc = start(
        serve_process, "--db", str(db), "--port", "0", "--engine", "native", "--workers", "2"
    )
    port = proc.wait_listening()
    assert "2 workers" in "".join(proc.output)
    pids = [
        int(m.group(1))
        for m in re.finditer(r"worker \d+ started \(pid (\d+)\)", "".join(proc.output))
    ]
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGKILL)
    while True:  # the supervisor logs the death, then the replacement
        line = proc.lines.get(timeout=60)
        assert line is not None
        if "worker 0 started" in line:
            break
    for _ in range(10):
        assert scu.echo("127.0.0.1", port, timeout=10) == 0
    assert proc.stop() == 0
    assert "Traceback" not in "".join(proc.output)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--db", "/nonexistent/db.sqlite3"], "does not exist"),
        (["--db", "{notsqlite}"], "not an SQLite database"),
        (["--db", "{db}", "--port", "99999"], "'port'"),
        (["--db", "{db}", "--engine", "threads"], "'engine'"),
        (["--db", "{db}", "--engine", "pynetdicom", "--workers", "2"], "'workers'"),
        (["--db", "{db}", "--ae-title", "MUCH_TOO_LONG_AE_TITLE"], "'ae_title'"),
        (["--db", "{db}", "--config", "/nonexistent.toml"], "does not exist"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], needle: str) -> None:
    db = make_db(tmp_path / "db.sqlite3")
    notsqlite = tmp_path / "notes.txt"
    notsqlite.write_text("hello")
    args = [a.format(db=db, notsqlite=notsqlite) for a in args]
    result = subprocess.run(
        [sys.executable, "-m", "rpi_async", "serve", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rpi-async: error: ")
    assert needle in lines[0]


@pytest.mark.network
def test_port_in_use_is_one_line(tmp_path: Path, serve_process: list[ServeProcess]) -> None:
    db = make_db(tmp_path / "db.sqlite3")
    proc = start(serve_process, "--db", str(db), "--port", "0")
    port = proc.wait_listening()
    result = subprocess.run(
        [sys.executable, "-m", "rpi_async", "serve", "--db", str(db), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("rpi-async: error: ")
    assert "Traceback" not in result.stderr
    assert proc.stop() == 0


def test_config_show_names_sources(tmp_path: Path) -> None:
    config = tmp_path / "rpi.toml"
    config.write_text("port = 2104\n")
    result = subprocess.run(
        [sys.executable, "-m", "rpi_async", "config", "show", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "RPI_ASYNC_AE_TITLE": "FROM_ENV"},
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"port\s+2104\s+\(file ", result.stdout)
    assert re.search(r"ae_title\s+FROM_ENV\s+\(env RPI_ASYNC_AE_TITLE\)", result.stdout)
    assert re.search(r"host\s+127\.0\.0\.1\s+\(default\)", result.stdout)
