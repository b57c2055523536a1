"""Readable text for an RPI response identifier: a patient header and the content tree.

Works on any identifier, ours or another SCP's: missing attributes are skipped, value
types this project does not render are shown by their value type, and nothing raises on
odd content (the query SCU prints what a remote SCP sent).
"""

from __future__ import annotations

from typing import Any

from pydicom.dataset import Dataset

_INDENT = "  "
_DIMENSIONLESS = frozenset({"1", "{1}"})


def _first(ds: Dataset, keyword: str) -> Dataset | None:
    seq = ds.get(keyword)
    if not seq:
        return None
    try:
        item = seq[0]
    except (TypeError, IndexError):
        return None
    return item if isinstance(item, Dataset) else None


def _meaning(item: Dataset | None) -> str:
    if item is None:
        return "?"
    meaning = item.get("CodeMeaning")
    if meaning:
        return str(meaning)
    value = item.get("CodeValue") or item.get("LongCodeValue") or item.get("URNCodeValue")
    return f"{value} ({item.get('CodingSchemeDesignator', '?')})" if value else "?"


def _date(value: str) -> str:
    if len(value) >= 8 and value[:8].isdigit():
        return f"{value[:4]}-{value[4:6]}-{value[6:8]}"
    if len(value) >= 6 and value[:6].isdigit():  # a partial DT: year and month
        return f"{value[:4]}-{value[4:6]}{value[6:]}"
    return value


def _datetime(value: str) -> str:
    text = _date(value)
    rest = value[8:]
    if len(rest) >= 4 and rest[:4].isdigit():
        text += f" {rest[:2]}:{rest[2:4]}"
        if len(rest) >= 6 and rest[4:6].isdigit():
            text += f":{rest[4:6]}"
    return text


def _number(item: Dataset) -> str:
    measured = _first(item, "MeasuredValueSequence")
    if measured is None:
        return "(no value)"
    value = str(measured.get("NumericValue", "?"))
    units = _first(measured, "MeasurementUnitsCodeSequence")
    if units is None or str(units.get("CodeValue", "")) in _DIMENSIONLESS:
        return value
    return f"{value} {_meaning(units)}"


def _value(item: Dataset, value_type: str) -> str | None:
    """The item's value as text, None for containers."""
    if value_type == "CONTAINER":
        return None
    if value_type == "CODE":
        return _meaning(_first(item, "ConceptCodeSequence"))
    if value_type == "NUM":
        return _number(item)
    if value_type == "TEXT":
        return repr(str(item.get("TextValue", "")))
    if value_type == "DATE":
        return _date(str(item.get("Date", "")))
    if value_type == "DATETIME":
        return _datetime(str(item.get("DateTime", "")))
    if value_type == "TIME":
        return str(item.get("Time", ""))
    if value_type == "PNAME":
        return str(item.get("PersonName", ""))
    if value_type == "UIDREF":
        return str(item.get("UID", ""))
    return f"<{value_type.lower() or 'no value type'}>"


def _walk(item: Dataset, depth: int, lines: list[str]) -> None:
    value_type = str(item.get("ValueType", ""))
    relationship = str(item.get("RelationshipType", ""))
    concept = _meaning(_first(item, "ConceptNameCodeSequence"))
    value = _value(item, value_type)
    head = f"{relationship} " if relationship else ""
    line = f"{_INDENT * depth}{head}{concept}"
    if value is not None:
        line += f" = {value}"
    lines.append(line)
    children: Any = item.get("ContentSequence") or ()
    for child in children:
        if isinstance(child, Dataset):
            _walk(child, depth + 1, lines)


def patient_header(ds: Dataset) -> str:
    """One line: patient name, ID and issuer, birth date, sex, template."""
    parts = [f"Patient {ds.get('PatientName') or '(no name)'}"]
    patient_id = ds.get("PatientID")
    if patient_id:
        issuer = ds.get("IssuerOfPatientID")
        parts.append(f"ID {patient_id}" + (f" (issuer {issuer})" if issuer else ""))
    if ds.get("PatientBirthDate"):
        parts.append(f"born {_date(str(ds.PatientBirthDate))}")
    if ds.get("PatientSex"):
        parts.append(f"sex {ds.PatientSex}")
    template = _first(ds, "ContentTemplateSequence")
    if template is not None:
        parts.append(
            f"template {template.get('MappingResource', '?')} "
            f"{template.get('TemplateIdentifier', '?')}"
        )
    if ds.get("ObservationDateTime"):
        parts.append(f"observed {_datetime(str(ds.ObservationDateTime))}")
    return ", ".join(parts)


def content_tree_text(ds: Dataset, *, header: bool = True) -> str:
    """The identifier as an indented tree (relationship, concept, value), one item a line."""
    lines = [patient_header(ds)] if header else []
    if ds.get("ValueType") or ds.get("ConceptNameCodeSequence") or ds.get("ContentSequence"):
        _walk(ds, 0, lines)
    return "\n".join(lines)
