"""``rpi-async query`` and ``rpi-async echo`` against a running server: output, exit codes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.conftest import RunningServer

pytestmark = pytest.mark.network


@pytest.fixture
def engine() -> str:
    """The CLI is engine-agnostic; tests/engines covers both engines."""
    return "native"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rpi_async", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_query_prints_statuses_and_tree(server: RunningServer) -> None:
    result = run(
        "query", server.host, str(server.port), "--patient-id", "P0001", "--issuer", "HOSP_A",
        "--sop", "breast",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "0xFF00 Pending" in out
    assert "0x0000 Success" in out
    assert "Relevant Patient Information for Breast Imaging" in out
    assert "Cyst aspiration" in out
    assert "Left breast" in out


def test_query_json_and_save(server: RunningServer, tmp_path: Path) -> None:
    saved = tmp_path / "answer.dcm"
    result = run(
        "query", server.host, str(server.port), "--patient-id", "P0001", "--issuer", "HOSP_A",
        "--sop", "cardiac", "--json", "--save", str(saved),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert model["00100020"]["Value"] == ["P0001"]
    assert model["0040A043"]["Value"][0]["00080100"]["Value"] == ["11329-0"]
    ds = dcmread(saved)
    assert ds.PatientID == "P0001"
    assert ds.ContentSequence


def test_query_failure_status_exits_1(server: RunningServer) -> None:
    result = run("query", server.host, str(server.port), "--patient-id", "DUP")
    assert result.returncode == 1
    assert "0xC100" in result.stdout
    assert "Traceback" not in result.stderr


def test_query_unsupported_template_exits_1(server: RunningServer) -> None:
    result = run(
        "query", server.host, str(server.port), "--patient-id", "P0001", "--template", "4242"
    )
    assert result.returncode == 1
    assert "0xC200" in result.stdout


def test_no_match_exits_0(server: RunningServer) -> None:
    result = run("query", server.host, str(server.port), "--patient-id", "NOBODY")
    assert result.returncode == 0
    assert "0x0000 Success" in result.stdout


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["query", "127.0.0.1", "{closed}", "--patient-id", "X", "--timeout", "5"], "connect"),
        (["echo", "127.0.0.1", "{closed}", "--timeout", "5"], "connect"),
        (["echo", "127.0.0.1", "{port}", "--aec", "WRONG_AE"], "called-ae-title"),
        (["query", "127.0.0.1", "{port}", "--patient-id", "X", "--sop", "dental"], "--sop"),
    ],
)
def test_connection_and_usage_errors_exit_2(
    server: RunningServer, args: list[str], needle: str
) -> None:
    closed = _closed_port()
    result = run(*[a.format(closed=closed, port=server.port) for a in args])
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("rpi-async: error: ")
    assert needle in lines[0]


def test_echo_ok(server: RunningServer) -> None:
    result = run("echo", server.host, str(server.port))
    assert result.returncode == 0
    assert "0x0000" in result.stdout
