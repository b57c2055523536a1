"""DCMTK's tools are found by what they are, not by name: the venv holds pynetdicom's."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import dcmtk

ROOT = Path(__file__).resolve().parents[2]
# A stand-in for pynetdicom's Python echoscu: same name, no DCMTK in its answer.
IMPOSTOR = "#!/bin/sh\necho 'usage: echoscu [options] addr port' >&2\nexit 2\n"


def _impostor_first_on_path(tmp_path: Path) -> dict[str, str]:
    fake = tmp_path / "venv-bin"
    fake.mkdir()
    tool = fake / "echoscu"
    tool.write_text(IMPOSTOR)
    tool.chmod(0o755)
    return {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ.get('PATH', '')}"}


def _have_dcmtk(env: dict[str, str]) -> bool:
    """Run scripts/test's own ``have_dcmtk`` function."""
    script = (ROOT / "scripts" / "test").read_text()
    start = script.index("have_dcmtk() {")
    function = script[start : script.index("\n}\n", start) + 3]
    proc = subprocess.run(["bash", "-c", function + "have_dcmtk"], env=env, timeout=60, check=False)
    return proc.returncode == 0


def test_an_impostor_on_path_is_not_dcmtk(tmp_path: Path) -> None:
    env = _impostor_first_on_path(tmp_path)
    installed = Path("/usr/bin/echoscu").exists() or Path("/usr/local/bin/echoscu").exists()
    assert _have_dcmtk(env) is installed


def test_conftest_skips_the_impostor(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = _impostor_first_on_path(tmp_path)
    monkeypatch.setenv("PATH", env["PATH"])
    found = dcmtk("echoscu")
    assert found != str(tmp_path / "venv-bin" / "echoscu")
    if Path("/usr/bin/echoscu").exists():
        assert found == "/usr/bin/echoscu"
