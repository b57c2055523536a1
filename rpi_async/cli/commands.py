"""Imports every command module so each registers its commands on the app."""

from __future__ import annotations

from rpi_async.cli import (
    bench,  # noqa: F401
    db,  # noqa: F401
    db_migrate,  # noqa: F401
    render,  # noqa: F401
    scu,  # noqa: F401
    serve,  # noqa: F401
    version,  # noqa: F401
)
