"""Where the patient store lives when no ``--db`` is given."""

from __future__ import annotations

from pathlib import Path

from platformdirs import user_data_dir

APP_NAME = "rpi-async"
DEFAULT_DB_NAME = "demo.sqlite3"


def default_db_path() -> Path:
    """The per-user default database: ``<user data dir>/rpi-async/demo.sqlite3``."""
    return Path(user_data_dir(APP_NAME, appauthor=False)) / DEFAULT_DB_NAME
