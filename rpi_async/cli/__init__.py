"""The ``rpi-async`` command line: a thin layer over the library.

Every sub-command module registers itself on ``app``. ``main`` turns the library's
one-line errors (RpiError) and typer's usage errors (a missing argument, a number that
is not one) into ``rpi-async: error: ...`` on stderr and exit code 2, so no traceback
and no multi-line error box ever reaches an operator.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from typer.core import TyperCommand

from rpi_async.errors import RpiError

app = typer.Typer(
    name="rpi-async",
    help="DICOM Relevant Patient Information Query service (PS3.4 Annex Q).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class PlainHelpCommand(TyperCommand):
    """``--help`` as plain text wrapped to the terminal (80 columns at most).

    For commands with many long flags: typer's rich table cuts their names short.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rich_markup_mode = None


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


def _usage_error(exc: typer.TyperException) -> str:
    """A typer (click) usage error as one line, with where to find help."""
    message = " ".join(exc.format_message().split())
    command = getattr(getattr(exc, "ctx", None), "command_path", None)
    return f"{message} (see '{command} --help')" if command else message


def main() -> None:
    _register()
    try:
        code = app(standalone_mode=False)
    except RpiError as exc:
        print(f"rpi-async: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
    except typer.TyperException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a bare group: its help, as usual
            print(exc.format_message(), file=sys.stderr)
            sys.exit(EXIT_USAGE)
        print(f"rpi-async: error: {_usage_error(exc)}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
