"""Network engines. Each serves the same QueryService; they differ only in I/O.

Shared by both: ``lifecycle`` (association outcomes, reject reasons, stats, the access
log) and ``access`` (which calling AE titles may associate, from where, how many at once).
"""

from __future__ import annotations

from rpi_async.engines.base import Engine, EngineContext


def create_engine(ctx: EngineContext) -> Engine:
    """The engine named by ``ctx.settings.engine``."""
    name = ctx.settings.engine
    if name == "pynetdicom":
        from rpi_async.engines.pynetdicom_engine import PynetdicomEngine

        return PynetdicomEngine(ctx)
    if name == "native":
        from rpi_async.engines.native import NativeEngine

        return NativeEngine(ctx)
    raise ValueError(f"unknown engine {name!r}")


__all__ = ["Engine", "EngineContext", "create_engine"]
