"""The operations HTTP port: ``/metrics``, ``/healthz`` and ``/readyz``, on the event loop.

Theory of operation. A deliberately tiny HTTP/1.1 server on ``asyncio.start_server``:
one request per connection (``Connection: close``), GET or HEAD, headers read up to
8 KiB within ``REQUEST_TIMEOUT`` seconds. It runs on the server's own event loop, so
``/readyz`` asks the database through the same connection pool the queries use, and a
stalled loop shows up as a failing probe.

- ``/metrics``: the Prometheus text format (``ops.metrics``; with ``--workers N`` the
  supervisor's merge of its workers', ``ops.workers``);
- ``/healthz``: 200 while the process runs its loop (liveness);
- ``/readyz``: 200 only when the readiness check passes (the server accepts
  associations and the database answers), 503 with the reason otherwise.

Bind it to loopback or a management network: it has no authentication.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from rpi_async.errors import ConfigError

log = logging.getLogger("rpi_async.server")

REQUEST_TIMEOUT = 5.0
MAX_HEADER = 8192
TEXT = "text/plain; charset=utf-8"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    503: "Service Unavailable",
}

ReadinessCheck = Callable[[], Awaitable[tuple[bool, str]]]
MetricsSource = Callable[[], Awaitable[bytes]]


class OpsHttpServer:
    """Serves the three paths until ``close``."""

    def __init__(
        self, render_metrics: MetricsSource, metrics_type: str, readiness: ReadinessCheck
    ) -> None:
        self.render_metrics = render_metrics
        self.metrics_type = metrics_type
        self.readiness = readiness
        self._server: asyncio.Server | None = None
        self.address: tuple[str, int] | None = None

    async def start(self, host: str, port: int) -> tuple[str, int]:
        """Listen on ``host``:``port``; ConfigError naming them when that fails."""
        try:
            self._server = await asyncio.start_server(
                self._handle, host, port, limit=MAX_HEADER, reuse_address=True
            )
        except OSError as exc:
            raise ConfigError(
                f"cannot listen for metrics on {host}:{port}: {exc.strerror or exc}"
            ) from None
        sockname = self._server.sockets[0].getsockname()
        self.address = (str(sockname[0]), int(sockname[1]))
        return self.address

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
                status, ctype, body, method = await self._respond(head)
            header = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\n"
                f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                "Cache-Control: no-store\r\nConnection: close\r\n\r\n"
            ).encode("ascii")
            writer.write(header if method == "HEAD" else header + body)
            await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            pass  # a client that went away or sent nonsense gets nothing more
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _respond(self, head: bytes) -> tuple[int, str, bytes, str]:
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return 400, TEXT, b"bad request\n", "GET"
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return 405, TEXT, b"method not allowed\n", "GET"
        if target == "/metrics":
            return 200, self.metrics_type, await self.render_metrics(), method
        if target == "/healthz":
            return 200, TEXT, b"ok\n", method
        if target == "/readyz":
            ok, why = await self.readiness()
            if ok:
                return 200, TEXT, b"ready\n", method
            return 503, TEXT, f"not ready: {why}\n".encode(), method
        return 404, TEXT, b"not found\n", method
