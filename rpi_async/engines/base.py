"""What every engine gets and must provide."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from rpi_async.config import Settings
from rpi_async.service.query import QueryService
from rpi_async.service.stats import ServerStats


@dataclass(frozen=True, slots=True)
class EngineContext:
    settings: Settings
    service: QueryService
    stats: ServerStats


class Engine(Protocol):
    async def serve(self, on_ready: Callable[[tuple[str, int]], None], stop: asyncio.Event) -> None:
        """Listen, call ``on_ready(bound address)``, serve until ``stop`` is set, then
        stop accepting, let in-flight associations finish within the grace period, abort
        the rest and return."""
        ...
