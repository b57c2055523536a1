"""The Upper Layer core does no I/O: no module of it imports an I/O or logging module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import rpi_async.ul

FORBIDDEN = {"asyncio", "socket", "threading", "select", "selectors", "logging", "ssl", "time"}
PACKAGE = Path(rpi_async.ul.__file__).parent
MODULES = sorted(PACKAGE.glob("*.py"))


def imported_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_the_package_has_its_modules() -> None:
    assert {p.stem for p in MODULES} >= {
        "pdu",
        "items",
        "dimse",
        "negotiation",
        "fsm",
        "connection",
    }


@pytest.mark.parametrize("path", MODULES, ids=[p.stem for p in MODULES])
def test_module_imports_no_io(path: Path) -> None:
    roots = {name.split(".")[0] for name in imported_names(path)}
    assert not roots & FORBIDDEN
    # Within the project, only the vocabulary and the error base class are used.
    project = {n for n in imported_names(path) if n.split(".")[0] == "rpi_async"}
    assert all(
        n == "rpi_async" or n.startswith(("rpi_async.ul", "rpi_async.dicom.", "rpi_async.errors"))
        for n in project
    ), project


def test_importing_the_package_loads_no_io_module() -> None:
    code = (
        "import sys; import rpi_async.ul; "
        f"print(sorted(set(sys.modules) & set({sorted(FORBIDDEN - {'time'})!r})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
