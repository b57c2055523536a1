"""Every configuration key has a serve flag; help fits 80 columns; config show and files."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rpi_async.cli import app
from rpi_async.cli import commands as _commands  # noqa: F401  (registers the commands)
from rpi_async.config import Settings, load_settings
from rpi_async.config.settings import CONFIG_ENV, FIELD_NAMES
from rpi_async.errors import ConfigError
from tests.cli.cli_support import assert_one_line_error
from tests.conftest import make_db


def _help(*command: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "rpi_async", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "COLUMNS": "80", "TERM": "dumb"},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("command", [["serve"], ["bench"], ["config", "show"]])
def test_help_fits_80_columns_with_whole_flag_names(command: list[str]) -> None:
    text = _help(*command)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text


def test_every_key_has_a_serve_flag() -> None:
    text = _help("serve")
    flags = set(re.findall(r"--[a-z][a-z0-9-]*", text))
    for name in FIELD_NAMES:
        assert "--" + name.replace("_", "-") in flags, name


_RECORDED: list[Settings] = []


class _FakeServer:
    """Stands in for Server: records the settings serve built, serves nothing."""

    def __init__(self, settings: Settings, *, worker: bool = False) -> None:
        _RECORDED.append(settings)

    async def run(self, *, announce: bytes | None = None) -> None:
        return None


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    import rpi_async.logs
    import rpi_async.server

    monkeypatch.setattr(rpi_async.server, "Server", _FakeServer)
    monkeypatch.setattr(rpi_async.logs, "configure", lambda *a, **k: None)
    for name in list(os.environ):
        if name.startswith("RPI_ASYNC_"):
            monkeypatch.delenv(name)
    _RECORDED.clear()
    return _RECORDED


def test_the_flags_reach_the_settings(tmp_path: Path, recorded: list[Settings]) -> None:
    db = make_db(tmp_path / "db.sqlite3")
    key = tmp_path / "audit.key"
    result = CliRunner().invoke(
        app,
        [
            "serve", "--db", str(db), "--acse-timeout", "5", "--dimse-timeout", "6",
            "--network-timeout", "7", "--query-timeout", "8", "--store-readers", "2",
            "--store-mmap-mib", "1", "--shutdown-grace", "3", "--reuse-port",
            "--audit-secret-file", str(key), "--audit-source-id", "NODE1",
            "--allowed-calling-aes", "A", "--allowed-calling-ae", "B@10.0.0.0/8",
            "--no-accept-any-called-ae",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (settings,) = recorded
    expected: dict[str, Any] = {
        "db": db,
        "acse_timeout": 5.0,
        "dimse_timeout": 6.0,
        "network_timeout": 7.0,
        "query_timeout": 8.0,
        "store_readers": 2,
        "store_mmap_mib": 1,
        "shutdown_grace": 3.0,
        "reuse_port": True,
        "audit_secret_file": key,
        "audit_source_id": "NODE1",
        "allowed_calling_aes": ("A", "B@10.0.0.0/8"),
        "accept_any_called_ae": False,
    }
    assert {k: getattr(settings, k) for k in expected} == expected
    assert settings.port == Settings().port  # not given: the default


def test_config_file_from_the_environment(tmp_path: Path, recorded: list[Settings]) -> None:
    config = tmp_path / "rpi.toml"
    config.write_text("port = 2104\nquery_timeout = 4\n")
    settings, origin = load_settings(environ={CONFIG_ENV: str(config)})
    assert settings.port == 2104
    assert origin["port"] == f"file {config}"
    other = tmp_path / "other.toml"
    other.write_text("port = 2105\n")
    settings, _ = load_settings(config_file=other, environ={CONFIG_ENV: str(config)})
    assert settings.port == 2105  # --config wins
    with pytest.raises(ConfigError, match=f"does not exist \\(named by {CONFIG_ENV}\\)"):
        load_settings(environ={CONFIG_ENV: str(tmp_path / "missing.toml")})
    db = make_db(tmp_path / "db.sqlite3")
    result = CliRunner().invoke(app, ["serve", "--db", str(db)], env={CONFIG_ENV: str(config)})
    assert result.exit_code == 0, result.stderr
    assert recorded[0].query_timeout == 4.0


def test_config_show_prints_effective_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("RPI_ASYNC_"):
            monkeypatch.delenv(name)
    result = CliRunner().invoke(app, ["config", "show"])
    assert result.exit_code == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(lines) == set(FIELD_NAMES)
    assert "None" not in result.stdout
    assert re.search(r"audit_secret_file\s+/\S+/rpi-async/audit\.key\s+\(default\)", result.stdout)
    assert re.search(r"metrics_port\s+off\s+\(default\)", result.stdout)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--tls-cert", "{missing}"], "invalid value for 'tls_cert': file {missing} does not"),
        (["--tls-cert", "{db}", "--tls-key", "{missing}"], "'tls_key': file {missing} does not"),
        (["--host", "nosuchhost.invalid", "--port", "0"], "cannot listen on nosuchhost.invalid:0"),
    ],
)
def test_serve_errors_name_the_file_or_host(tmp_path: Path, args: list[str], fragment: str) -> None:
    db = make_db(tmp_path / "db.sqlite3")
    missing = tmp_path / "missing.pem"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RPI_ASYNC_")}
    proc = subprocess.run(
        [
            sys.executable, "-m", "rpi_async", "serve", "--db", str(db),
            *[a.format(db=db, missing=missing) for a in args],
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )  # fmt: skip
    assert_one_line_error(
        proc.returncode, proc.stdout, proc.stderr, fragment.format(missing=missing)
    )
