"""Row <-> Fact conversion, shared by the reader and the importers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rpi_async.dicom.codes import Code
from rpi_async.store.model import Fact, Section

_CODE_FIELDS = ("concept", "code", "laterality", "site", "modifier", "result", "unit")


def fact_to_row(fact: Fact) -> tuple[Any, ...]:
    """Values in the order of ``schema.FACT_COLUMNS``."""
    row: list[Any] = [fact.section.value]
    for name in _CODE_FIELDS:
        code: Code | None = getattr(fact, name)
        if code is None:
            row += [None, None, None]
        else:
            row += [code.value, code.scheme, code.meaning]
    row += [
        fact.start,
        fact.end,
        fact.number,
        fact.text,
        None if fact.ongoing is None else int(fact.ongoing),
    ]
    return tuple(row)


def row_to_fact(row: Sequence[Any]) -> Fact:
    """Inverse of ``fact_to_row``, for a row in ``schema.FACT_COLUMNS`` order."""
    codes: dict[str, Code | None] = {}
    i = 1
    for name in _CODE_FIELDS:
        value, scheme, meaning = row[i], row[i + 1], row[i + 2]
        codes[name] = None if value is None else Code(value, scheme, meaning)
        i += 3
    start, end, number, text, ongoing = row[i : i + 5]
    return Fact(
        section=Section(row[0]),
        start=start,
        end=end,
        number=number,
        text=text,
        ongoing=None if ongoing is None else bool(ongoing),
        **codes,
    )
