"""The native asyncio engine (``--engine native``)."""

from rpi_async.engines.native.engine import NativeEngine

__all__ = ["NativeEngine"]
