"""``rpi-async serve`` as a child process, for the tests that need a real process."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading

LISTENING = re.compile(r"rpi-async listening on ([\d.]+):(\d+)")


class ServeProcess:
    """``rpi-async serve`` in a subprocess; its stderr read line by line in a thread.

    RPI_ASYNC_* variables of the test environment are not passed on; ``env`` adds to it.
    """

    def __init__(self, args: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rpi_async", "serve", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith("RPI_ASYNC_")},
                **(env or {}),
            },
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.output.append(line)
            self.lines.put(line)
        self.lines.put(None)

    def wait_listening(self, timeout: float = 60) -> int:
        """The port, once the server says it is listening."""
        return int(self.wait_for(LISTENING, timeout=timeout).group(2))

    def wait_for(
        self, pattern: str | re.Pattern[str], count: int = 1, timeout: float = 60
    ) -> re.Match[str]:
        """The ``count``-th log line matching ``pattern`` (``timeout`` s at most a line)."""
        seen = 0
        while True:
            line = self.lines.get(timeout=timeout)
            if line is None:
                raise AssertionError("server exited:\n" + "".join(self.output))
            match = re.search(pattern, line)
            if match:
                seen += 1
                if seen == count:
                    return match

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        self._reader.join(timeout)
        self._close_pipes()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._reader.join(10)
        self._close_pipes()

    def _close_pipes(self) -> None:
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()
