"""The ``rpi-async`` command line: a thin layer over the library.

Every sub-command module registers itself on ``app``. ``main`` turns the library's
one-line errors (RpiError) into ``rpi-async: error: ...`` on stderr and exit code 2, so no
traceback ever reaches an operator.
"""

from __future__ import annotations

import sys

import typer

from rpi_async.errors import RpiError

app = typer.Typer(
    name="rpi-async",
    help="DICOM Relevant Patient Information Query service (PS3.4 Annex Q).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """DICOM Relevant Patient Information Query service (PS3.4 Annex Q)."""


EXIT_OK = 0
EXIT_DICOM_FAILURE = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    """Print a one-line error and return the Exit to raise."""
    print(f"rpi-async: error: {message}", file=sys.stderr)
    return typer.Exit(code)


def _register() -> None:
    # Imported for their side effect of adding commands to ``app``.
    from rpi_async.cli import commands  # noqa: F401


def main() -> None:
    _register()
    try:
        app()
    except RpiError as exc:
        print(f"rpi-async: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except KeyboardInterrupt:
        sys.exit(130)
