"""The patient document: one JSON object per patient, parsed and validated.

Theory of operation: ``parse_patient`` turns one decoded JSON object into a
``PatientRecord`` or raises ``DocumentError`` naming the offending field (a dotted path
such as ``sections.medication[2].start``). It checks everything the JSON Schema in
``rpi_async/schemas/patient-document.schema.json`` checks (shapes, required fields,
lengths, patterns) and what a schema cannot say: that dates are real calendar dates,
that an end does not precede its start, that a number comes with its unit, that list
sections carry a coded value and attribute sections a concept. Values are normalised to
their DICOM form on the way in: dates to DA (YYYYMMDD), date-times to DT
(YYYYMMDD[HH[MM[SS[.F]]]][+ZZZZ]), names to PN (Family^Given^Middle^Prefix^Suffix), so the
store only ever holds what can go on the wire (PS3.5 §6.2). Codes, date strings, texts
and the set of fields a fact has repeat a lot across a population, so their checks are
memoised; the bulk-import path (``parse_patient_rows``) also skips building Fact objects
and produces the writer's row encoding directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from rpi_async.dicom.codes import Code
from rpi_async.store import units
from rpi_async.store.model import ATTRIBUTE_SECTIONS, Fact, OtherPatientId, PatientRecord, Section
from rpi_async.store.writer import (
    CODE_FIELDS,
    SCALAR_FIELDS,
    SECTION_TEXT,
    EncodedFact,
    PatientRows,
)

# PS3.5 Table 6.2-1 limits.
LO_MAX = 64  # Patient ID, Issuer of Patient ID, Code Meaning
PN_GROUP_MAX = 64
SH_MAX = 16  # Coding Scheme Designator
CODE_VALUE_MAX = 64  # Code Value (SH, 16) or Long Code Value (UC)
TEXT_MAX = 1024
PN_COMPONENTS = ("family", "given", "middle", "prefix", "suffix")
SEXES = frozenset({"M", "F", "O"})
ID_TYPES = frozenset({"TEXT", "RFID", "BARCODE"})  # Type of Patient ID (0010,0022)

PATIENT_FIELDS = frozenset(
    {"patient_id", "issuer", "name", "birth_date", "sex", "other_ids", "sections"}
)
FACT_FIELDS = frozenset({*CODE_FIELDS, *SCALAR_FIELDS})
SECTION_NAMES = frozenset(s.value for s in Section)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_TEXT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_DA = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})")
# DICOM DT (PS3.5 Table 6.2-1) may stop after the year or the month: YYYY, YYYYMM.
_DICOM_DT = re.compile(
    r"(?P<y>\d{4})(?:(?P<mo>\d{2})(?:(?P<d>\d{2})"
    r"(?:(?P<h>\d{2})(?:(?P<mi>\d{2})(?:(?P<s>\d{2})(?:\.(?P<f>\d{1,6}))?)?)?)?)?)?"
    r"(?P<tz>[+-]\d{4})?"
)
# ISO 8601 as FHIR dateTime writes it, also partial: YYYY, YYYY-MM.
_ISO_DT = re.compile(
    r"(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:\.(?P<f>\d{1,6}))?)?)?)?)?"
    r"(?P<tz>Z|[+-]\d{2}:?\d{2})?"
)
FULL_DATE = 8  # characters of a DT value that has a day: YYYYMMDD


class DocumentError(ValueError):
    """A patient document is invalid. ``field`` is a dotted path inside the record."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


# ---------------------------------------------------------------------------------------
# Scalars


def _string(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise DocumentError(field, f"expected a string, got {_kind(value)}")
    return value


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def long_string(value: object, field: str, *, required: bool = False) -> str:
    """A DICOM LO value: at most 64 characters, no backslash or control characters.

    Leading and trailing spaces are not significant in LO (PS3.5 Table 6.2-1) and are
    removed.
    """
    text = _string(value, field).strip(" ")
    if required and not text:
        raise DocumentError(field, "must not be empty")
    if len(text) > LO_MAX:
        raise DocumentError(field, f"longer than {LO_MAX} characters")
    if "\\" in text or _CONTROL.search(text):
        raise DocumentError(field, "contains a backslash or a control character")
    return text


def person_name(value: object, field: str) -> str:
    """DICOM PN from "Family^Given^Middle^Prefix^Suffix" or an object of those parts."""
    if isinstance(value, dict):
        unknown = value.keys() - set(PN_COMPONENTS)
        if unknown:
            raise DocumentError(field, f"unknown name part {sorted(unknown)[0]!r}")
        parts = []
        for part in PN_COMPONENTS:
            text = value.get(part)
            text = "" if text is None else _string(text, f"{field}.{part}").strip(" ")
            if "^" in text or "=" in text:
                raise DocumentError(f"{field}.{part}", "must not contain '^' or '='")
            parts.append(text)
        text = "^".join(parts).rstrip("^")
    else:
        text = _string(value, field).strip(" ")
    if "\\" in text or _CONTROL.search(text):
        raise DocumentError(field, "contains a backslash or a control character")
    groups = text.split("=")
    if len(groups) > 3:
        raise DocumentError(field, "more than 3 component groups")
    for group in groups:
        if len(group) > PN_GROUP_MAX:
            raise DocumentError(field, f"a component group is longer than {PN_GROUP_MAX}")
        if group.count("^") > 4:
            raise DocumentError(field, "more than 5 name components")
    return text


def dicom_date(value: object, field: str) -> str:
    """DA (YYYYMMDD) from YYYYMMDD or YYYY-MM-DD; must be a real calendar date."""
    text = _string(value, field)
    match = _DA.fullmatch(text)
    if match is None or ("-" in text and text.count("-") != 2):
        raise DocumentError(field, f"{text!r} is not a date (YYYYMMDD or YYYY-MM-DD)")
    y, m, d = (int(g) for g in match.groups())
    try:
        date(y, m, d)
    except ValueError:
        raise DocumentError(field, f"{text!r} is not a valid calendar date") from None
    return f"{y:04d}{m:02d}{d:02d}"


_DT_CACHE: dict[str, str] = {}


def _full_date(dt: str) -> bool:
    return len(dt) >= FULL_DATE and dt[:FULL_DATE].isdigit()


def date_part(dt: str) -> str:
    """The date digits of a DT value: YYYY, YYYYMM or YYYYMMDD."""
    end = 0
    while end < FULL_DATE and end < len(dt) and dt[end].isdigit():
        end += 1
    return dt[:end]


def dicom_datetime(value: object, field: str) -> str:
    """DT from DICOM DA/DT or ISO 8601, validated as a real date and time.

    Partial dates (a year, or a year and month) stay partial: ``2019-04`` -> ``201904``.
    """
    text = _string(value, field)
    cached = _DT_CACHE.get(text)
    if cached is not None:
        return cached
    match = _DICOM_DT.fullmatch(text) or _ISO_DT.fullmatch(text)
    if match is None:
        raise DocumentError(
            field,
            f"{text!r} is not a date-time (YYYYMMDD[HHMMSS] or ISO 8601 YYYY-MM-DD[THH:MM:SS])",
        )
    g = match.groupdict()
    try:
        hms = (int(g["h"] or 0), int(g["mi"] or 0), int(g["s"] or 0))
        datetime(int(g["y"]), int(g["mo"] or 1), int(g["d"] or 1), *hms)
    except ValueError:
        raise DocumentError(field, f"{text!r} is not a valid date and time") from None
    out = g["y"] + (g["mo"] or "") + (g["d"] or "")
    out += (g["h"] or "") + (g["mi"] or "") + (g["s"] or "")
    if g["f"]:
        out += "." + g["f"]
    tz = g["tz"]
    if tz:
        tz = "+0000" if tz == "Z" else tz.replace(":", "")
        if int(tz[1:3]) > 14 or int(tz[3:5]) > 59:
            raise DocumentError(field, f"{text!r} has an invalid UTC offset")
        out += tz
    if len(_DT_CACHE) > 200_000:
        _DT_CACHE.clear()
    _DT_CACHE[text] = out
    return out


# ---------------------------------------------------------------------------------------
# Codes

_CODE_CACHE: dict[Any, Code] = {}


def code(value: object, field: str) -> Code:
    """A Code from {"value","scheme","meaning"} or the compact "value|scheme|meaning"."""
    if isinstance(value, str):
        cached = _CODE_CACHE.get(value)
        if cached is not None:
            return cached
        parts = value.split("|", 2)
        if len(parts) != 3:
            raise DocumentError(field, f"{value!r} is not a code (value|scheme|meaning)")
        result = _make_code(parts[0], parts[1], parts[2], field)
        key: Any = value
    elif isinstance(value, dict):
        if not value.keys() <= _VSM_SET:
            extra = sorted(value.keys() - _VSM_SET)[0]
            raise DocumentError(field, f"unknown code field {extra!r}")
        for name in _VSM:
            if name not in value:
                raise DocumentError(field, f"code without {name!r}")
        key = tuple(_string(value[name], f"{field}.{name}") for name in _VSM)
        cached = _CODE_CACHE.get(key)
        if cached is not None:
            return cached
        result = _make_code(key[0], key[1], key[2], field)
    else:
        raise DocumentError(
            field, f"expected a code object or 'value|scheme|meaning', got {_kind(value)}"
        )
    if len(_CODE_CACHE) > 100_000:
        _CODE_CACHE.clear()
    _CODE_CACHE[key] = result
    return result


_VSM = ("value", "scheme", "meaning")
_VSM_SET = frozenset(_VSM)


def _make_code(value: str, scheme: str, meaning: str, field: str) -> Code:
    for text, name, limit in (
        (value, "value", CODE_VALUE_MAX),
        (scheme, "scheme", SH_MAX),
        (meaning, "meaning", LO_MAX),
    ):
        if not text.strip(" "):
            raise DocumentError(field, f"code {name} is empty")
        if len(text) > limit:
            raise DocumentError(field, f"code {name} {text!r} is longer than {limit} characters")
        if "\\" in text or _CONTROL.search(text):
            raise DocumentError(field, f"code {name} contains a backslash or control character")
        if text != text.strip(" "):
            raise DocumentError(field, f"code {name} {text!r} has leading or trailing spaces")
    if "|" in scheme:
        raise DocumentError(field, "code scheme contains '|'")
    return Code(value, scheme, meaning)


# ---------------------------------------------------------------------------------------
# Facts


def _number(value: object, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DocumentError(field, f"expected a number, got {_kind(value)}")
    if not math.isfinite(value):
        raise DocumentError(field, "must be a finite number")
    return float(value)


def _text(value: object, field: str) -> str:
    text = _string(value, field)
    if len(text) > TEXT_MAX:
        raise DocumentError(field, f"longer than {TEXT_MAX} characters")
    if _TEXT_CONTROL.search(text):
        raise DocumentError(field, "contains a control character")
    return text


def _boolean(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise DocumentError(field, f"expected true or false, got {_kind(value)}")
    return value


_CODE, _DATETIME, _NUMBER, _TEXT, _BOOLEAN = range(5)
_FIELD_KIND = {
    **dict.fromkeys(CODE_FIELDS, _CODE),
    "start": _DATETIME,
    "end": _DATETIME,
    "number": _NUMBER,
    "text": _TEXT,
    "ongoing": _BOOLEAN,
}
_TEXT_SEEN: dict[str, str] = {}


def encoded_fact(section: Section, value: object) -> tuple[dict[str, Any], EncodedFact]:
    """Validate one fact of ``section``: (its Fact keyword arguments, its encoded row).

    A DocumentError's field is relative to the fact ("start", or "" for the fact itself).
    This is the innermost loop of a bulk import, hence the inlined cache look-ups.
    """
    if not isinstance(value, dict):
        raise DocumentError("", f"expected an object, got {_kind(value)}")
    kw: dict[str, Any] = {}
    row: list[Any] = [SECTION_TEXT[section]]
    for name, raw in value.items():
        kind = _FIELD_KIND.get(name)
        if raw is None:
            if kind is None:
                raise DocumentError("", f"unknown fact field {name!r}")
            continue
        if kind == _CODE:
            c = _CODE_CACHE.get(raw) if raw.__class__ is str else None
            if c is None:
                c = code(raw, name)
            kw[name] = c
            row += (c.value, c.scheme, c.meaning)
        elif kind == _DATETIME:
            v = _DT_CACHE.get(raw) if raw.__class__ is str else None
            kw[name] = v = dicom_datetime(raw, name) if v is None else v
            row.append(v)
        elif kind == _TEXT:
            v = _TEXT_SEEN.get(raw) if raw.__class__ is str else None
            if v is None:
                v = _text(raw, name)
                if len(_TEXT_SEEN) < 100_000:
                    _TEXT_SEEN[v] = v
            kw[name] = v
            row.append(v)
        elif kind == _NUMBER:
            kw[name] = number = _number(raw, name)
            row.append(number)
        elif kind == _BOOLEAN:
            kw[name] = _boolean(raw, name)
            row.append(int(raw))
        else:
            raise DocumentError("", f"unknown fact field {name!r}")
    shape = tuple(kw)
    problem = _SHAPE_PROBLEMS.get((section, shape), _UNCHECKED)
    if problem is _UNCHECKED:
        problem = _shape_problem(section, kw)
        if len(_SHAPE_PROBLEMS) < 10_000:
            _SHAPE_PROBLEMS[(section, shape)] = problem
    if problem is not None:
        raise DocumentError(*problem)
    if "number" in kw:
        concept = kw["concept"].key if "concept" in kw else None
        try:
            converted = units.normalise(section, concept, kw["number"], kw["unit"])
        except units.UnitError as exc:
            raise DocumentError("unit", str(exc)) from None
        if converted is not None:
            kw["number"], kw["unit"] = converted
            row = _row(section, kw)
    if "end" in kw and "start" in kw and kw["end"][:FULL_DATE] < kw["start"][:FULL_DATE]:
        # Compare dates only, and only as far as both go: 2019 is not before 20190402. (When
        # the first 8 characters are not before, no shorter prefix is.)
        end, start = date_part(kw["end"]), date_part(kw["start"])
        n = min(len(end), len(start))
        if end[:n] < start[:n]:
            raise DocumentError("end", f"{kw['end']} is before start {kw['start']}")
    if section in ATTRIBUTE_SECTIONS and "start" in kw and not _full_date(kw["start"]):
        raise DocumentError(
            "start", f"{kw['start']!r} is partial: an attribute's date is a DICOM DA, a full date"
        )
    return kw, (shape, row)


def _row(section: Section, kw: Mapping[str, Any]) -> list[Any]:
    """The encoded row values of fact fields ``kw`` (in their order)."""
    row: list[Any] = [SECTION_TEXT[section]]
    for v in kw.values():
        if isinstance(v, Code):
            row += (v.value, v.scheme, v.meaning)
        else:
            row.append(int(v) if isinstance(v, bool) else v)
    return row


def fact_fields(section: Section, value: object) -> dict[str, Any]:
    """The validated, normalised fields of one fact of ``section`` (Fact keyword args)."""
    return encoded_fact(section, value)[0]


def parse_fact(section: Section, value: object) -> Fact:
    """One fact of ``section``, from its JSON object."""
    return Fact(section, **fact_fields(section, value))


_Problem = tuple[str, str] | None  # (field, message) of a DocumentError, or None
_UNCHECKED: Any = object()
# Which fields a fact has decides most of its validity; many facts share a shape.
_SHAPE_PROBLEMS: dict[tuple[Section, tuple[str, ...]], _Problem] = {}


def _shape_problem(section: Section, kw: Mapping[str, Any]) -> _Problem:
    """What is wrong with a fact of ``section`` that has just the fields of ``kw``."""
    if section in ATTRIBUTE_SECTIONS:
        if "concept" not in kw:
            return "", f"a {section.value} fact needs a 'concept'"
        if "code" not in kw and "number" not in kw and "start" not in kw and "text" not in kw:
            return "", "a concept needs a value: code, number, start or text"
    else:
        if "concept" in kw:
            return "concept", f"only attribute sections take a concept, not {section.value}"
        if "code" not in kw and "text" not in kw:
            return "", f"a {section.value} fact needs a 'code' (or a 'text')"
    if "number" in kw and "unit" not in kw:
        return "unit", "a number needs a unit (UCUM code)"
    if "unit" in kw and "number" not in kw:
        return "number", "a unit without a number"
    return None


def _within(prefix: str, exc: DocumentError) -> DocumentError:
    """The same error with its field path prefixed."""
    field = f"{prefix}.{exc.field}" if exc.field else prefix
    return DocumentError(field, exc.message)


# ---------------------------------------------------------------------------------------
# Patients


def patient_id_of(value: object) -> str | None:
    """The patient_id of a raw document, if it has a usable one (for error messages)."""
    if isinstance(value, dict):
        pid = value.get("patient_id")
        if isinstance(pid, str) and pid.strip():
            return pid.strip()[:LO_MAX]
    return None


_Head = tuple[str, str, str, str, str, tuple[OtherPatientId, ...]]
SectionFields = list[tuple[Section, dict[str, Any], EncodedFact]]


def _head(value: object) -> _Head:
    """Patient ID, issuer, name, birth date, sex and other IDs of a document."""
    if not isinstance(value, dict):
        raise DocumentError("", f"a patient must be a JSON object, got {_kind(value)}")
    if not value.keys() <= PATIENT_FIELDS:
        extra = sorted(value.keys() - PATIENT_FIELDS)[0]
        raise DocumentError(extra, "unknown field")
    if "patient_id" not in value:
        raise DocumentError("patient_id", "missing (every patient needs one)")
    patient_id = long_string(value["patient_id"], "patient_id", required=True)
    issuer = _optional(value, "issuer", long_string)
    name = _optional(value, "name", person_name)
    birth_date = _optional(value, "birth_date", dicom_date)
    sex = _optional(value, "sex", _string)
    if sex and sex not in SEXES:
        raise DocumentError("sex", f"{sex!r} is not one of M, F, O")
    return patient_id, issuer, name, birth_date, sex, _other_ids(value.get("other_ids"))


def parse_patient(value: object) -> PatientRecord:
    """One patient document -> PatientRecord, or DocumentError."""
    patient_id, issuer, name, birth_date, sex, other_ids = _head(value)
    assert isinstance(value, dict)  # checked by _head
    return PatientRecord(
        patient_id=patient_id,
        issuer=issuer,
        name=name,
        birth_date=birth_date,
        sex=sex,
        other_ids=other_ids,
        facts=tuple(Fact(s, **kw) for s, kw, _ in section_fields(value.get("sections"))),
    )


def parse_patient_rows(value: object) -> PatientRows:
    """One patient document -> the writer's encoded form (no Fact objects), or DocumentError.

    Validates exactly as ``parse_patient`` does; bulk imports use it because building a
    frozen Fact per row and encoding it again costs more than the SQL insert itself.
    """
    patient_id, issuer, name, birth_date, sex, other_ids = _head(value)
    assert isinstance(value, dict)  # checked by _head
    facts = _section_rows(value.get("sections"))
    return PatientRows(patient_id, issuer, name, birth_date, sex, other_ids, facts)


def _optional(value: Mapping[str, Any], name: str, parse: Any) -> str:
    raw = value.get(name)
    return "" if raw is None else str(parse(raw, name))


def _other_id(item: object) -> OtherPatientId:
    if not isinstance(item, dict):
        raise DocumentError("", f"expected an object, got {_kind(item)}")
    if not item.keys() <= {"id", "issuer", "type"}:
        extra = sorted(item.keys() - {"id", "issuer", "type"})[0]
        raise DocumentError("", f"unknown field {extra!r}")
    if "id" not in item:
        raise DocumentError("", "missing 'id'")
    type_of_id = _optional(item, "type", _string) or "TEXT"
    if type_of_id not in ID_TYPES:
        raise DocumentError("type", f"{type_of_id!r} is not TEXT, RFID or BARCODE")
    return OtherPatientId(
        long_string(item["id"], "id", required=True),
        _optional(item, "issuer", long_string),
        type_of_id,
    )


def _other_ids(value: object) -> tuple[OtherPatientId, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise DocumentError("other_ids", f"expected an array, got {_kind(value)}")
    out = []
    for i, item in enumerate(value):
        try:
            out.append(_other_id(item))
        except DocumentError as exc:
            raise _within(f"other_ids[{i}]", exc) from None
    return tuple(out)


_SECTION_ORDER = tuple((s, s.value, f"sections.{s.value}") for s in Section)


def _section_lists(value: object) -> list[tuple[Section, str, list[Any]]]:
    """(section, field path, fact list) of a document's ``sections``, in Section order."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise DocumentError("sections", f"expected an object, got {_kind(value)}")
    if not value.keys() <= SECTION_NAMES:
        extra = sorted(value.keys() - SECTION_NAMES)[0]
        raise DocumentError(f"sections.{extra}", "unknown section")
    out = []
    for section, name, field in _SECTION_ORDER:  # a fixed order, whatever the key order
        items = value.get(name)
        if items is None:
            continue
        if not isinstance(items, list):
            raise DocumentError(field, f"expected an array, got {_kind(items)}")
        out.append((section, field, items))
    return out


def section_fields(value: object) -> SectionFields:
    """(section, fact fields, encoded row) of a document's ``sections``, in Section order."""
    out: SectionFields = []
    for section, field, items in _section_lists(value):
        for i, item in enumerate(items):
            try:
                out.append((section, *encoded_fact(section, item)))
            except DocumentError as exc:
                raise _within(f"{field}[{i}]", exc) from None
    return out


def _section_rows(value: object) -> list[EncodedFact]:
    """The encoded rows of ``section_fields``, without the rest (the bulk-import path)."""
    out: list[EncodedFact] = []
    for section, field, items in _section_lists(value):
        for i, item in enumerate(items):
            try:
                out.append(encoded_fact(section, item)[1])
            except DocumentError as exc:
                raise _within(f"{field}[{i}]", exc) from None
    return out


# ---------------------------------------------------------------------------------------
# Back to JSON


def code_to_json(c: Code) -> str:
    """The compact form "value|scheme|meaning"."""
    return f"{c.value}|{c.scheme}|{c.meaning}"


def fact_to_json(fact: Fact) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in CODE_FIELDS:
        c: Code | None = getattr(fact, name)
        if c is not None:
            out[name] = code_to_json(c)
    for name in ("start", "end", "number", "text", "ongoing"):
        v = getattr(fact, name)
        if v is not None:
            out[name] = v
    return out


def record_to_json(record: PatientRecord) -> dict[str, Any]:
    """The patient document of a record (inverse of ``parse_patient``)."""
    out: dict[str, Any] = {"patient_id": record.patient_id}
    if record.issuer:
        out["issuer"] = record.issuer
    if record.name:
        out["name"] = record.name
    if record.birth_date:
        out["birth_date"] = record.birth_date
    if record.sex:
        out["sex"] = record.sex
    if record.other_ids:
        out["other_ids"] = [
            {"id": o.patient_id, "issuer": o.issuer, "type": o.type_of_id}
            if o.issuer
            else {"id": o.patient_id, "type": o.type_of_id}
            for o in record.other_ids
        ]
    sections: dict[str, list[dict[str, Any]]] = {}
    for fact in record.facts:
        sections.setdefault(fact.section.value, []).append(fact_to_json(fact))
    if sections:
        out["sections"] = sections
    return out
