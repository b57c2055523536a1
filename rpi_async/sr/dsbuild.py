"""Cheap construction of pydicom objects for the renderer's hot path.

Theory of operation: building an identifier costs one ``Dataset`` per content item and
per code. ``Dataset()`` runs a dozen intercepted attribute assignments (about 7 µs), which
would dominate a rendering, so ``new_dataset`` clones the instance state of a prototype
instead (well under 1 µs); a self-check at import compares the clone with a regular
``Dataset`` and falls back to the regular constructor if pydicom's internals differ.
Element values are passed in the form pydicom itself stores after conversion (``str``,
``DSfloat``, ``Sequence``), so elements are made with ``already_converted=True``.

Code Sequence elements (concept names, coded values, units) depend only on the code, so
they are built once and shared by every identifier that uses them: rendered datasets must
be treated as read-only below their top level (replace a nested element, never assign
into it).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydicom.config import IGNORE
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag

from rpi_async.dicom.codes import Code

_PROTOTYPE_STATE: dict[str, Any] = {k: v for k, v in Dataset().__dict__.items() if k != "_dict"}
# Mutable per-instance members (private block cache, pixel options...) are copied.
_FRESH: tuple[str, ...] = tuple(
    k for k, v in _PROTOTYPE_STATE.items() if isinstance(v, dict | list | set)
)


def _cloned_dataset(elements: dict[BaseTag, Any]) -> Dataset:
    ds = Dataset.__new__(Dataset)
    state = ds.__dict__
    state.update(_PROTOTYPE_STATE)
    for name in _FRESH:
        state[name] = _PROTOTYPE_STATE[name].copy()
    state["_dict"] = elements
    return ds


def _regular_dataset(elements: dict[BaseTag, Any]) -> Dataset:
    return Dataset(elements)


def _clone_matches_constructor() -> bool:
    tag = BaseTag(0x0040A040)
    elements = {tag: element(tag, "CS", "CONTAINER")}
    clone, regular = _cloned_dataset(dict(elements)), Dataset(dict(elements))
    return (
        clone.__dict__.keys() == regular.__dict__.keys()
        and clone == regular
        and clone.ValueType == "CONTAINER"
    )


def element(tag: BaseTag, vr: str, value: Any) -> DataElement:
    """A data element whose value is already in pydicom's stored form."""
    return DataElement(tag, vr, value, already_converted=True, validation_mode=IGNORE)


def sequence_element(tag: BaseTag, items: list[Dataset]) -> DataElement:
    return element(tag, "SQ", Sequence(items))


@lru_cache(maxsize=16384)
def code_sequence(tag: BaseTag, code: Code) -> DataElement:
    """A one-item Code Sequence element for ``code``; shared, never modify it."""
    return sequence_element(tag, [code.to_dataset()])


new_dataset = _cloned_dataset if _clone_matches_constructor() else _regular_dataset
