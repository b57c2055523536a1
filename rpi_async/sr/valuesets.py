"""Context group (CID) membership, from the PS3.16 tables that pydicom ships.

Theory of operation: pydicom generates two dictionaries from PS3.16: ``cid_concepts``
(CID -> coding scheme -> concept keywords) and ``concepts`` (scheme -> keyword ->
{code value: (meaning, [CIDs])}). A CID's members are the (code value, scheme) pairs
reached through both; they are computed once per CID and kept as a frozenset, so a
membership test on the hot path is one hash lookup.

Identity is (code value, scheme); the meaning is display text. Codes of the retired
SNOMED-RT designator ``SRT`` are translated to their SNOMED CT (``SCT``) equivalents with
pydicom's SRT->SCT table before any test, and by ``current`` for output.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import cast

from pydicom.sr._cid_dict import cid_concepts
from pydicom.sr._concepts_dict import concepts
from pydicom.sr._snomed_dict import mapping

from rpi_async.dicom.codes import Code
from rpi_async.sr.content import ValueSet

# The concepts table is inferred as untyped; its shape, for the type checker.
_CID_CONCEPTS = cid_concepts
_CONCEPTS = cast(dict[str, dict[str, dict[str, tuple[str, list[int]]]]], concepts)
_SRT_TO_SCT: dict[str, str] = mapping["SRT"]


def key_of(code: Code) -> tuple[str, str]:
    """(value, scheme) identity of ``code``, with SRT translated to SCT."""
    if code.scheme == "SRT":
        return (_SRT_TO_SCT.get(code.value, code.value), "SCT")
    return (code.value, code.scheme)


@lru_cache(maxsize=4096)
def current(code: Code) -> Code:
    """``code`` itself, or its SNOMED CT equivalent if it is an SRT code."""
    if code.scheme != "SRT":
        return code
    value, scheme = key_of(code)
    return Code(value, scheme, code.meaning)


@cache
def cid_members(cid: int) -> frozenset[tuple[str, str]]:
    """Every (code value, scheme) of context group ``cid``; empty if pydicom lacks it."""
    members: set[tuple[str, str]] = set()
    for scheme, keywords in _CID_CONCEPTS.get(cid, {}).items():
        by_keyword = _CONCEPTS.get(scheme, {})
        for keyword in keywords:
            for value, (_meaning, cids) in by_keyword.get(keyword, {}).items():
                if cid in cids:
                    members.add((value, scheme))
    return frozenset(members)


def members(value_set: ValueSet) -> frozenset[tuple[str, str]]:
    """The (value, scheme) pairs of a value set, CID or enumerated."""
    if value_set.cid is not None:
        return cid_members(value_set.cid)
    return frozenset(key_of(c) for c in value_set.codes)


def is_member(code: Code, value_set: ValueSet) -> bool:
    return key_of(code) in members(value_set)
