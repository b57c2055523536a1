"""``rpi-async bench`` as an operator runs it: one-line errors with exit 2, JSON output."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import rpi_async.cli.commands  # noqa: F401  (registers the commands)
from rpi_async.cli import app
from tests.bench.bench_peers import CountingScp

pytestmark = pytest.mark.network


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


def bench(*args: str) -> Outcome:
    """Runs the command in this process, as the CLI's entry point would."""
    result = CliRunner().invoke(app, ["bench", *args])
    return Outcome(result.exit_code, result.stdout, result.stderr)


def bench_process(*args: str) -> Outcome:
    """Runs the command as a separate process: what an operator sees, end to end."""
    done = subprocess.run(
        [sys.executable, "-m", "rpi_async", "bench", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


def assert_one_line_error(done: Outcome, text: str) -> None:
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("rpi-async: error: ")
    assert text in lines[0]


@pytest.fixture
def listening_only() -> Iterator[int]:
    """A socket that listens but never accepts: connections complete, nothing answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_refused_port(free_port: int) -> None:
    done = bench_process("127.0.0.1", str(free_port), "--duration", "1")
    assert_one_line_error(done, f"cannot connect to 127.0.0.1:{free_port}: connection refused")


def test_wrong_called_ae(strict_scp: CountingScp) -> None:
    done = bench("127.0.0.1", str(strict_scp.port), "--aec", "NOT_IT", "--count", "1")
    assert_one_line_error(done, "called AE title not recognized")


def test_server_that_never_answers(listening_only: int) -> None:
    done = bench("127.0.0.1", str(listening_only), "--timeout", "0.5", "--count", "1")
    assert_one_line_error(done, "did not answer within 0.5 s")


@pytest.mark.parametrize(
    ("option", "value", "text"),
    [
        ("--mix", "foo=1", "--mix"),
        ("--sop", "dental", "--sop must be one of"),
        ("--concurrency", "0", "--concurrency must be at least 1"),
        ("--aet", "A_TITLE_LONGER_THAN_16", "AE title"),
        ("--patients", "/nonexistent/ids.txt", "does not exist"),
        ("--demo-ids", "0", "--demo-ids must be at least 1"),
        ("--template", "DCMR", "--template must be a template number"),
    ],
)
def test_bad_options(free_port: int, option: str, value: str, text: str) -> None:
    assert_one_line_error(bench("127.0.0.1", str(free_port), option, value), text)


def test_run_writes_json(counting_scp: CountingScp, tmp_path: Path) -> None:
    out = tmp_path / "result.json"
    done = bench(
        "127.0.0.1",
        str(counting_scp.port),
        "--count",
        "5",
        "--warmup",
        "0",
        "--demo-ids",
        "3",
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["associations"]["completed"] == 5
    assert data["queries"]["completed"] == 5
    assert counting_scp.requested == 6  # the probe association, then the five measured
    assert counting_scp.finds == 5
    assert sum(data["errors"].values()) == 0
    assert data["latency"]["association"]["count"] == 5
    assert "associations / s" in done.stdout


def test_exit_status_follows_thresholds_and_errors(counting_scp: CountingScp) -> None:
    base = ["127.0.0.1", str(counting_scp.port), "--count", "20", "--warmup", "0"]
    passed = bench(*base, "--demo-ids", "2", "--threshold", "p99<10s", "--threshold", "rate>0")
    assert passed.returncode == 0, passed.stderr
    missed = bench(*base, "--demo-ids", "2", "--threshold", "p50<0.001ms")
    assert missed.returncode == 1
    assert "threshold p50<0.001ms missed" in missed.stderr
    bad = bench(*base, "--threshold", "nonsense")
    assert_one_line_error(bad, "threshold")
