"""Every runtime dependency is imported by the package, and nothing else is declared."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Distribution name -> the module it provides, where they differ.
MODULES = {"hdrhistogram": "hdrh", "prometheus-client": "prometheus_client"}


def _imported() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "rpi_async").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found


def test_every_runtime_dependency_is_imported() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    names = [
        re.split(r"[<>=;! ]", spec, maxsplit=1)[0] for spec in project["project"]["dependencies"]
    ]
    imported = _imported()
    unused = [n for n in names if MODULES.get(n, n.replace("-", "_")) not in imported]
    assert unused == []
    assert {"anyio", "aiosqlite", "uvloop", "pydicom", "pynetdicom"} <= imported
