"""``rpi-async version``."""

from __future__ import annotations

import typer

from rpi_async import __version__
from rpi_async.cli import app


@app.command()
def version() -> None:
    """Print the rpi-async version."""
    typer.echo(f"rpi-async {__version__}")
