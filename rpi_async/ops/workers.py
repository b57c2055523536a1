"""``--workers N`` seen from outside as one service: one ``/metrics``, one ``/readyz``.

Theory of operation. Each worker process serves its own operations port on loopback
(an ephemeral port it announces to the supervisor on its ready line). The supervisor
serves the configured ``metrics_host:metrics_port`` itself and, on each request, asks
every running worker over loopback HTTP:

- ``/metrics``: the workers' expositions merged into one, every sample labelled
  ``worker="<index>"`` (sum in PromQL: ``sum without (worker) (...)``), followed by the
  supervisor's own families (workers configured, up, restarts). The Prometheus text
  format (0.0.4) wants the samples of one family together, so samples are grouped by the
  family whose ``# HELP``/``# TYPE`` lines precede them, in first-seen order.
- ``/readyz``: 200 only when the supervisor is not stopping and every worker answers
  200; otherwise 503 naming the first worker that is not ready and why.

A worker that does not answer within ``WORKER_TIMEOUT`` counts as down for metrics and
not ready for ``/readyz``.

A worker talks to the supervisor by lines on its stdout: ``ready_line`` once it
listens (with its ops port), ``reload_line`` after each SIGHUP (whether the database
was reopened), so the supervisor can tell systemd when the whole group is reloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Mapping

WORKER_TIMEOUT = 3.0  # above the workers' own readiness ping timeout (2 s)
MAX_RESPONSE = 16 << 20

READY_PREFIX = "rpi-async worker ready"
RELOAD_PREFIX = "rpi-async worker reloaded"


def ready_line(metrics_port: int | None) -> bytes:
    return f"{READY_PREFIX} metrics={metrics_port or '-'}\n".encode()


def parse_ready_line(line: bytes) -> tuple[bool, int | None]:
    """(is a ready line, the worker's ops port or None)."""
    text = line.decode("ascii", "replace").strip()
    if not text.startswith(READY_PREFIX + " metrics="):
        return False, None
    port = text.rsplit("=", 1)[1]
    return True, int(port) if port.isdigit() else None


def reload_line(ok: bool) -> bytes:
    return f"{RELOAD_PREFIX} {'ok' if ok else 'failed'}\n".encode()


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{)?")
_META = re.compile(r"^# (?:HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*)")


async def http_get(host: str, port: int, path: str) -> tuple[int, bytes]:
    """One HTTP/1.1 GET on loopback (the workers' ops port closes after one response)."""
    async with asyncio.timeout(WORKER_TIMEOUT):
        reader, writer = await asyncio.open_connection(host, port)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode("ascii"))
            await writer.drain()
            data = await reader.read(MAX_RESPONSE)
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        raise OSError(f"bad HTTP response from {host}:{port}")
    return int(status_line[1]), body


def labelled(line: str, worker: int) -> str:
    """A sample line with ``worker="<worker>"`` as its first label."""
    match = _SAMPLE.match(line)
    if match is None:
        return line
    name, end = match.group(1), match.end()
    if match.group(2):
        rest = line[end:]
        sep = "" if rest.startswith("}") else ","
        return f'{name}{{worker="{worker}"{sep}{rest}'
    return f'{name}{{worker="{worker}"}}{line[end:]}'


def merge_expositions(parts: Mapping[int, bytes]) -> str:
    """Several workers' expositions as one, each sample labelled with its worker."""
    meta: dict[str, list[str]] = {}
    samples: dict[str, list[str]] = {}
    for worker, text in sorted(parts.items()):
        family = ""
        for line in text.decode("utf-8", "replace").splitlines():
            if not line:
                continue
            found = _META.match(line)
            if found is not None:
                family = found.group(1)
                lines = meta.setdefault(family, [])
                samples.setdefault(family, [])
                if line not in lines:
                    lines.append(line)
            elif not line.startswith("#"):
                samples.setdefault(family, []).append(labelled(line, worker))
    out: list[str] = []
    for family, lines in samples.items():
        out += meta.get(family, [])
        out += lines
    return "\n".join(out) + "\n" if out else ""


def supervisor_families(
    configured: int, up: Mapping[int, bool], restarts: Mapping[int, int]
) -> str:
    """The supervisor's own metrics, in the text format."""
    lines = [
        "# HELP rpi_workers Worker processes configured (--workers)",
        "# TYPE rpi_workers gauge",
        f"rpi_workers {configured}",
        "# HELP rpi_worker_up Whether the worker is running and answered this scrape",
        "# TYPE rpi_worker_up gauge",
        *(f'rpi_worker_up{{worker="{i}"}} {int(ok)}' for i, ok in sorted(up.items())),
        "# HELP rpi_worker_restarts_total Times the worker was started again after dying",
        "# TYPE rpi_worker_restarts_total counter",
        *(f'rpi_worker_restarts_total{{worker="{i}"}} {n}' for i, n in sorted(restarts.items())),
    ]
    return "\n".join(lines) + "\n"


async def scrape(ports: Mapping[int, int | None]) -> dict[int, bytes | None]:
    """Every worker's ``/metrics`` body, None for one that is down or did not answer."""

    async def one(port: int | None) -> bytes | None:
        if port is None:
            return None
        try:
            status, body = await http_get("127.0.0.1", port, "/metrics")
        except (OSError, TimeoutError):
            return None
        return body if status == 200 else None

    indexes = sorted(ports)
    bodies = await asyncio.gather(*(one(ports[i]) for i in indexes))
    return dict(zip(indexes, bodies, strict=True))


async def readiness(ports: Mapping[int, int | None]) -> tuple[bool, str]:
    """(ready, reason) of the whole group: every worker's ``/readyz``."""

    async def one(index: int, port: int | None) -> str | None:
        if port is None:
            return f"worker {index} is not running"
        try:
            status, body = await http_get("127.0.0.1", port, "/readyz")
        except (OSError, TimeoutError):
            return f"worker {index} did not answer"
        if status != 200:
            why = body.decode("utf-8", "replace").strip().removeprefix("not ready: ")
            return f"worker {index}: {why}"
        return None

    reasons = await asyncio.gather(*(one(i, p) for i, p in sorted(ports.items())))
    problems = [r for r in reasons if r is not None]
    if problems:
        return False, problems[0]
    return True, "ready"
