"""Numbers in the units their template row fixes, converted when a fact is written.

Theory of operation: a NUM row of a PS3.16 template names its units (TID 9001 ages in
years, UCUM ``a``; counts in ``1``; TID 3802 cholesterol in mg/dL; TID 9005 age at
occurrence in years; TID 9003 number of occurrences in ``1``). The renderer shows a
fact's number with the fact's unit, so the store holds every such number in the row's
unit: ``normalise`` converts it when the fact is validated (document import, FHIR import,
demo), and refuses a unit it cannot convert. Numbers of other facts keep their units.

``FIXED_UNITS`` says which facts have a fixed unit: attribute facts by (section,
concept), list facts by section. ``FACTORS`` says how to convert: (from, to) UCUM codes
-> the factor. Cholesterol mmol/L -> mg/dL uses its molar mass (386.65 g/mol, 38.67).
"""

from __future__ import annotations

from rpi_async.dicom.codes import Code
from rpi_async.sr import concepts as c
from rpi_async.store.model import Section

_GYN = Section.GYNECOLOGICAL
_AGES = (
    c.AGE_AT_FIRST_MENSES,
    c.AGE_AT_FIRST_FULL_TERM_PREGNANCY,
    c.AGE_AT_MENOPAUSE,
    c.AGE_AT_HYSTERECTOMY,
    c.AGE_LEFT_OVARY_REMOVED,
    c.AGE_RIGHT_OVARY_REMOVED,
)
_COUNTS = (
    c.PARA,
    c.TERM,
    c.PRETERM,
    c.LIVE_BIRTHS,
    c.LBW_OR_IUGR,
    c.GRAVIDA,
    c.ABORTA,
    c.ECTOPIC_PREGNANCIES,
)
# (section, concept key) of attribute facts -> the unit of their row.
FIXED_UNITS: dict[tuple[Section, tuple[str, str]], Code] = {
    **{(_GYN, a.key): c.YEARS for a in _AGES},
    **{(_GYN, n.key): c.NO_UNITS for n in _COUNTS},
    (_GYN, c.BREAST_FEEDING_HISTORY.key): c.WEEKS,
    (Section.LAB, c.HDL_CHOLESTEROL.key): c.MG_PER_DL,
    (Section.LAB, c.LDL_CHOLESTEROL.key): c.MG_PER_DL,
}
# List sections whose number has a fixed unit.
SECTION_UNITS: dict[Section, Code] = {
    Section.RISK_FACTOR: c.YEARS,  # TID 9005 Age at Occurrence
    Section.PROCEDURE: c.NO_UNITS,  # TID 9003 Number of occurrences
}
_DAYS_PER_YEAR = 365.25
# (from UCUM code, to UCUM code) -> factor.
FACTORS: dict[tuple[str, str], float] = {
    ("mo", "a"): 1 / 12,
    ("wk", "a"): 7 / _DAYS_PER_YEAR,
    ("d", "a"): 1 / _DAYS_PER_YEAR,
    ("a", "wk"): _DAYS_PER_YEAR / 7,
    ("mo", "wk"): _DAYS_PER_YEAR / 12 / 7,
    ("d", "wk"): 1 / 7,
    ("mmol/L", "mg/dL"): 38.67,
    ("g/L", "mg/dL"): 100.0,
    ("mg/L", "mg/dL"): 0.1,
}
# UCUM codes that all mean a plain count.
COUNT_CODES = frozenset({"1", "{1}", "{#}", "{count}", "{births}", "{pregnancies}"})


class UnitError(ValueError):
    """A number's unit cannot be converted to the unit its row fixes."""


def fixed_unit(section: Section, concept: tuple[str, str] | None) -> Code | None:
    """The unit the template fixes for this fact's number, if any."""
    if concept is not None:
        return FIXED_UNITS.get((section, concept))
    return SECTION_UNITS.get(section)


def normalise(
    section: Section, concept: tuple[str, str] | None, number: float, unit: Code
) -> tuple[float, Code] | None:
    """(number, unit) in the row's unit, or None when nothing changes; UnitError if it
    cannot be converted."""
    target = fixed_unit(section, concept)
    if target is None or unit.scheme != "UCUM":
        if target is not None:
            raise UnitError(f"{unit.scheme} units cannot be converted to {target.value} (UCUM)")
        return None
    if unit.value == target.value:
        return None if unit == target else (number, target)
    if target.value == "1" and unit.value in COUNT_CODES:
        return number, target
    factor = FACTORS.get((unit.value, target.value))
    if factor is None:
        raise UnitError(f"{unit.value!r} cannot be converted to {target.value!r}")
    return round(number * factor, 2), target
