"""Logging set-up: loggers by concern, text or JSON lines, PHI only at DEBUG.

Loggers: ``rpi_async.ul`` (network), ``.dimse`` (queries), ``.store``, ``.access`` (one
line per association), ``.audit``, ``.server``. pynetdicom's own logger is held at
WARNING unless the level is debug or trace, since it logs identifiers and per-PDU detail.
"""

from __future__ import annotations

import json
import logging
import sys
import time

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info and record.levelno <= logging.DEBUG:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


class _NoTracebackAboveDebug(logging.Filter):
    """Tracebacks are for developers: drop them from records above DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno > logging.DEBUG:
            record.exc_info = None
            record.exc_text = None
        return True


def skip_record_lookups() -> None:
    """Records leave out their source line, thread and process, which neither format
    shows: ``logging`` looks them up for every record unless told not to (the Logging
    HOWTO, "Optimization"). The access log writes a record per association."""
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


def configure(level: str = "info", fmt: str = "text") -> None:
    numeric = _LEVELS[level]
    skip_record_lookups()
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_NoTracebackAboveDebug())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.getLogger("pynetdicom").setLevel(
        numeric if numeric <= logging.DEBUG else logging.WARNING
    )
    logging.getLogger("aiosqlite").setLevel(max(numeric, logging.INFO))
    logging.getLogger("asyncio").setLevel(max(numeric, logging.WARNING))
