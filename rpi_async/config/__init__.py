"""One frozen settings object, built from TOML, then environment, then CLI flags."""

from rpi_async.config.settings import Settings, load_settings

__all__ = ["Settings", "load_settings"]
