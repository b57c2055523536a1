"""Helpers for the CLI tests."""

from __future__ import annotations

from rpi_async.cli import EXIT_USAGE


def assert_one_line_error(code: int, out: str, err: str, fragment: str) -> None:
    """Exit 2, nothing on stdout, one ``rpi-async: error:`` line naming ``fragment``."""
    assert code == EXIT_USAGE, (out, err)
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rpi-async: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in err
