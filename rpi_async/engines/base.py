"""What every engine gets and must provide."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from rpi_async.config import Settings
from rpi_async.engines.access import AccessPolicy
from rpi_async.service.query import QueryService
from rpi_async.service.stats import ServerStats


class ServiceSlot:
    """The QueryService in use. A database reload puts a new one here; queries already
    running finish on the one they started with."""

    __slots__ = ("current",)

    def __init__(self, service: QueryService) -> None:
        self.current = service


@dataclass(frozen=True, slots=True)
class EngineContext:
    settings: Settings
    services: ServiceSlot
    stats: ServerStats
    access: AccessPolicy = field(default_factory=AccessPolicy)
    ssl_context: ssl.SSLContext | None = None

    @property
    def service(self) -> QueryService:
        return self.services.current


class Engine(Protocol):
    async def serve(self, on_ready: Callable[[tuple[str, int]], None], stop: asyncio.Event) -> None:
        """Listen, call ``on_ready(bound address)``, serve until ``stop`` is set, then
        stop accepting, let in-flight associations finish within the grace period, abort
        the rest and return."""
        ...
