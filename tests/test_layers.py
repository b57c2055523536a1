"""Dependencies point down only: each part of the package imports only the parts below it.

The order, bottom up: the package's own constants and errors; ``dicom``; the Upper Layer
core ``ul``; ``config``; ``store`` and ``sr`` (one level: the renderer reads the store's
records, the store's importers map codes to the renderer's concepts) and the clients
``scu`` and ``bench``; ``service``; ``engines`` and ``ops`` (beside each other, neither
importing the other: ``ops`` plugs into ``service`` through the interfaces ``service``
defines, and the server wires both); ``server`` and ``supervisor``; ``cli``. Imports
inside functions count too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rpi_async

PACKAGE = Path(rpi_async.__file__).parent
LEVELS = {
    "__init__": 0,
    "errors": 0,
    "logs": 0,
    "capacity": 0,
    "dicom": 1,
    "ul": 2,
    "config": 3,
    "store": 4,
    "sr": 4,
    "scu": 4,
    "bench": 4,
    "service": 5,
    "engines": 6,
    "ops": 6,
    "server": 7,
    "supervisor": 7,
    "cli": 8,
    "__main__": 9,
}
SIDEWAYS = {("store", "sr"), ("sr", "store")}  # the one level whose parts import each other


def _allowed(source: str, target: str) -> bool:
    return LEVELS[target] < LEVELS[source] or (source, target) in SIDEWAYS


def _part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports() -> set[tuple[str, str, str]]:
    """(importing part, imported part, file) for every import of one part by another."""
    found: set[tuple[str, str, str]] = set()
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        source = relative.parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            for name in names:
                if name.split(".")[0] == "rpi_async" and _part(name) != source:
                    found.add((source, _part(name), str(relative)))
    return found


IMPORTS = sorted(_imports())


def test_every_part_has_a_level() -> None:
    parts = {p.name.removesuffix(".py") for p in PACKAGE.iterdir()}
    parts = {p for p in parts if not p.startswith(("_", ".")) or p in ("__init__", "__main__")}
    code = {p for p in parts if (PACKAGE / p).is_dir() and any((PACKAGE / p).rglob("*.py"))}
    code |= {p.stem for p in PACKAGE.glob("*.py")}
    assert code <= set(LEVELS)
    assert IMPORTS  # the walk found the imports


@pytest.mark.parametrize(
    ("source", "target", "where"), IMPORTS, ids=[f"{s}->{t}:{w}" for s, t, w in IMPORTS]
)
def test_imports_point_down(source: str, target: str, where: str) -> None:
    assert _allowed(source, target), (
        f"{where}: {source} (level {LEVELS[source]}) imports {target} (level {LEVELS[target]})"
    )


@pytest.mark.parametrize(
    ("source", "target"),
    [("config", "ops"), ("engines", "ops"), ("ops", "engines"), ("service", "ops")],
)
def test_the_rule_refuses_upward_and_sideways_imports(source: str, target: str) -> None:
    assert not _allowed(source, target)
    assert _allowed(target, "service")
