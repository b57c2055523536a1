"""Logging set-up (``rpi_async.logs``): what a record costs, what a line shows."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from rpi_async import logs


@pytest.fixture
def restored_logging() -> Iterator[None]:
    knobs = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    saved = {name: getattr(logging, name) for name in knobs}
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(logging, name, value)
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_records_skip_what_the_lines_do_not_show() -> None:
    logs.configure("info", "text")
    out = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    records: list[logging.LogRecord] = []

    def keep(record: logging.LogRecord) -> bool:
        records.append(record)
        return True

    handler.addFilter(keep)
    logging.getLogger("rpi_async.access").info("association %s", "127.0.0.1:4000")
    [record] = records
    # No caller lookup (a frame walk), thread or process (a system call) per record.
    assert (record.funcName, record.lineno) == ("(unknown function)", 0)
    assert record.thread is None
    assert record.process is None
    assert out.getvalue().rstrip().endswith("INFO    rpi_async.access: association 127.0.0.1:4000")
