"""A bounded on-disk spool for audit messages a syslog sink cannot deliver now.

Theory of operation. An ATNA audit record repository may be down or unreachable; IHE
ATNA (ITI-20) expects the node to keep its audit messages and send them once it can,
not to lose them. While the sink is down the audit writer thread appends each formatted
message to the spool file as one octet-counted frame (``LEN SP MSG``, the framing of
RFC 6587 §3.4.1 / RFC 5425 §4.3); while the spool holds anything, newer messages go
behind it, so the repository receives them in order. When the sink answers again
``drain`` sends the frames from the oldest on, advancing a read offset after each one
sent, and empties the file once all are out.

The file is bounded (``max_bytes``): a message that does not fit is dropped and
counted, never silently. A spool left by a previous run is sent first. Delivery is at
least once: a message sent just before a crash, before the offset was kept, may be
sent again by the next run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from rpi_async.errors import ConfigError


class Spool:
    """Messages waiting for a sink, in order, in one append-only file."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.dropped = 0
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a+b")
        except OSError as exc:
            raise ConfigError(f"audit spool {path} cannot be opened: {exc.strerror}") from None
        self._offset = 0  # of the oldest frame not yet sent
        self.pending = sum(1 for _ in self._frames())

    def _frames(self) -> list[bytes]:
        """The frames from the read offset on (a torn last frame is left out)."""
        self._fh.seek(self._offset)
        data = self._fh.read()
        frames: list[bytes] = []
        pos = 0
        while (space := data.find(b" ", pos)) > pos:
            try:
                length = int(data[pos:space])
            except ValueError:
                break
            end = space + 1 + length
            if end > len(data):
                break
            frames.append(data[space + 1 : end])
            pos = end
        return frames

    def append(self, message: bytes) -> bool:
        """Keep ``message`` for later; False (dropped and counted) when the spool is full."""
        frame = b"%d " % len(message) + message
        self._fh.seek(0, os.SEEK_END)
        if self._fh.tell() + len(frame) > self.max_bytes:
            self.dropped += 1
            return False
        self._fh.write(frame)
        self._fh.flush()
        self.pending += 1
        return True

    def drain(self, send: Callable[[bytes], None]) -> int:
        """Send the waiting messages in order until one fails (OSError); how many went."""
        sent = 0
        for frame in self._frames():
            try:
                send(frame)
            except OSError:
                break
            self._offset += len(b"%d " % len(frame)) + len(frame)
            self.pending -= 1
            sent += 1
        if self.pending == 0:
            self._fh.truncate(0)
            self._offset = 0
        return sent

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._fh.close()
