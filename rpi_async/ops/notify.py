"""systemd's readiness protocol (sd_notify), spoken directly: no library needed.

Theory of operation. A unit of ``Type=notify`` or ``Type=notify-reload`` starts the
service with ``NOTIFY_SOCKET`` naming a Unix datagram socket (a path, or ``@name`` in
the abstract namespace); the service sends newline-separated ``KEY=VALUE`` assignments
there, one datagram per state change (sd_notify(3), systemd.service(5)):

- ``READY=1``: start-up is complete (here: the port is bound and the database open);
  ``systemctl start`` returns only then. Sent again after a reload.
- ``RELOADING=1`` with ``MONOTONIC_USEC=<CLOCK_MONOTONIC in µs>``: a reload began
  (SIGHUP); ``systemctl reload`` waits for the next ``READY=1``.
- ``STOPPING=1``: shutdown began.
- ``STATUS=<text>``: one line shown by ``systemctl status``.
- ``WATCHDOG=1``: the service is alive. With ``WatchdogSec=`` the manager sets
  ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``); we send every half of that interval from
  a timer on the event loop, so a stalled loop stops the pings and systemd restarts the
  service.

Without ``NOTIFY_SOCKET`` (not under systemd, or a worker of ``--workers N``, whose
supervisor speaks for the group) every call does nothing. A failed send is logged at
debug and never stops the server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Mapping

log = logging.getLogger("rpi_async.server")

NOTIFY_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


class Notifier:
    """Sends state changes to the service manager, if there is one."""

    def __init__(self, address: str | None, watchdog_usec: int = 0) -> None:
        if address and address.startswith("@"):
            address = "\0" + address[1:]  # the abstract namespace
        self.address = address or None
        self.watchdog_interval = watchdog_usec / 1e6 / 2 if watchdog_usec > 0 else None
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        env = os.environ if environ is None else environ
        usec = 0
        pid = env.get("WATCHDOG_PID")
        if pid is None or pid == str(os.getpid()):
            try:
                usec = int(env.get("WATCHDOG_USEC", "0"))
            except ValueError:
                usec = 0
        return cls(env.get("NOTIFY_SOCKET"), usec)

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *assignments: str) -> None:
        if self.address is None:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto("\n".join(assignments).encode(), self.address)
        except OSError as exc:
            log.debug("cannot notify the service manager: %s", exc)

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={status}")

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}", "STATUS=reloading the database")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping")

    def start_watchdog(self, loop: asyncio.AbstractEventLoop) -> None:
        """``WATCHDOG=1`` every half watchdog interval while the loop runs."""
        interval = self.watchdog_interval
        if self.address is None or interval is None:
            return

        def ping() -> None:
            self.send("WATCHDOG=1")
            self._timer = loop.call_later(interval, ping)

        ping()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
