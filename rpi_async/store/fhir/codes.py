"""FHIR codings to DICOM codes: the code-system table and the Code Meaning rule.

Theory of operation: a FHIR R4 ``CodeableConcept`` holds one or more ``Coding``s
(system URI, code, display). DICOM identifies a code by (Code Value, Coding Scheme
Designator) and always shows a Code Meaning (PS3.3 8.8, PS3.16 Table 8-1). ``SYSTEMS``
maps each code-system URI this importer knows to its designator. A CodeableConcept
becomes the first of its codings whose system has a designator, in the order of
``SYSTEMS`` (so SNOMED CT wins over ICD-10 when both are given); a concept none of whose
codings has a designator is an error naming the systems, never silently dropped (the
operator can add a designator with ``--code-system URI=DESIGNATOR``).

Code Meaning rule: the coding's ``display``, else the concept's ``text``, else the code
value itself; control characters become spaces and backslashes slashes (PS3.5 LO); a
meaning longer than 64 characters is cut to its first 61 characters followed by "..."
(``MEANING_MAX``). The code value must fit a Long Code Value (64 characters).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rpi_async.dicom.codes import Code

# FHIR code-system URI -> DICOM Coding Scheme Designator (PS3.16 Table 8-1), in order of
# preference when a CodeableConcept carries codings of several systems.
SYSTEMS: dict[str, str] = {
    "http://snomed.info/sct": "SCT",
    "http://dicom.nema.org/resources/ontology/DCM": "DCM",
    "http://loinc.org": "LN",
    "http://www.nlm.nih.gov/research/umls/rxnorm": "RXNORM",
    "http://unitsofmeasure.org": "UCUM",
    "http://hl7.org/fhir/sid/ndc": "NDC",
    "http://hl7.org/fhir/sid/cvx": "CVX",
    "http://hl7.org/fhir/sid/icd-10": "I10",
    "http://hl7.org/fhir/sid/icd-10-cm": "I10C",
    "http://www.cms.gov/Medicare/Coding/ICD10": "I10P",
    "http://hl7.org/fhir/sid/icd-9-cm": "I9C",
    "http://www.ama-assn.org/go/cpt": "C4",
    "http://www.radlex.org": "RADLEX",
    "http://ncimeta.nci.nih.gov": "NCIt",
    "http://ncithesaurus.nci.nih.gov": "NCIt",
    "http://purl.bioontology.org/ontology/MESH": "MSH",
    "http://www.whocc.no/atc": "ATC",
}
SH_MAX = 16  # Coding Scheme Designator (SH)
VALUE_MAX = 64  # Long Code Value (UC) limit the document format keeps
MEANING_MAX = 64  # Code Meaning (LO)
_ELLIPSIS = "..."
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FhirError(ValueError):
    """A resource cannot be imported. ``field`` is a FHIRPath-like path inside it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


def parse_code_system(text: str) -> tuple[str, str]:
    """``URI=DESIGNATOR`` of ``--code-system``, or ValueError."""
    uri, sep, designator = text.rpartition("=")
    if not sep or not uri or not designator:
        raise ValueError(f"{text!r} is not URI=DESIGNATOR")
    if len(designator) > SH_MAX or "|" in designator or not designator.isprintable():
        raise ValueError(f"{designator!r} is not a Coding Scheme Designator (1-16 characters)")
    return uri, designator


def meaning(text: str) -> str:
    """A display text as a DICOM Code Meaning: LO characters, at most 64 of them."""
    clean = _CONTROL.sub(" ", text).replace("\\", "/").strip(" ")
    if len(clean) > MEANING_MAX:
        clean = clean[: MEANING_MAX - len(_ELLIPSIS)].rstrip(" ") + _ELLIPSIS
    return clean


class CodeMapper:
    """CodeableConcepts to Codes, with a table of designators (``SYSTEMS`` plus extras)."""

    def __init__(self, extra: Mapping[str, str] | None = None) -> None:
        self.systems = {**SYSTEMS, **(extra or {})}
        self._rank = {uri: i for i, uri in enumerate(self.systems)}
        self._cache: dict[tuple[str, str, str], Code] = {}

    def coding(self, value: object, field: str, text: str = "") -> Code | None:
        """A Coding as a Code; None when its system has no designator."""
        if not isinstance(value, dict):
            raise FhirError(field, "expected a Coding object")
        system, code = value.get("system"), value.get("code")
        if not isinstance(system, str) or not isinstance(code, str) or not code.strip():
            raise FhirError(field, "a coding needs a system and a code")
        designator = self.systems.get(system)
        if designator is None:
            return None
        display = value.get("display")
        shown = display if isinstance(display, str) and display.strip() else text or code
        key = (code, designator, shown)
        found = self._cache.get(key)
        if found is None:
            code = code.strip(" ")
            if len(code) > VALUE_MAX or "\\" in code or "|" in code or _CONTROL.search(code):
                raise FhirError(f"{field}.code", f"{code[:80]!r} is not a usable code value")
            found = Code(code, designator, meaning(shown) or code)
            if len(self._cache) < 50_000:
                self._cache[key] = found
        return found

    def concept(self, value: object, field: str, *, required: bool = True) -> Code | None:
        """The Code of a CodeableConcept: its best coding with a known system.

        With ``required``, a missing concept is an error; a concept without any coding of a
        known system always is (naming its systems).
        """
        if value is None:
            if required:
                raise FhirError(field, "missing")
            return None
        if not isinstance(value, dict):
            raise FhirError(field, "expected a CodeableConcept object")
        codings = value.get("coding") or []
        if not isinstance(codings, list):
            raise FhirError(f"{field}.coding", "expected an array")
        text = value.get("text") if isinstance(value.get("text"), str) else ""
        best: tuple[int, Code] | None = None
        systems: list[str] = []
        for i, coding in enumerate(codings):
            found = self.coding(coding, f"{field}.coding[{i}]", str(text))
            if found is None:
                systems.append(str(coding.get("system")))
                continue
            rank = self._rank[coding["system"]]
            if best is None or rank < best[0]:
                best = (rank, found)
        if best is not None:
            return best[1]
        if systems:
            raise FhirError(
                f"{field}.coding",
                f"no DICOM coding scheme for system {systems[0]!r} "
                "(add --code-system URI=DESIGNATOR)",
            )
        if required:
            raise FhirError(field, "has no coding")
        return None

    def has_code(self, value: Any, system: str, codes: frozenset[str]) -> bool:
        """True if a CodeableConcept (or a list of them) has a coding of ``system`` in ``codes``."""
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                for coding in item.get("coding") or ():
                    if (
                        isinstance(coding, dict)
                        and coding.get("system") == system
                        and coding.get("code") in codes
                    ):
                        return True
        return False
