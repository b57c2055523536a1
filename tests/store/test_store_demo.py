"""The demo population: reproducible, complete, and coded from the right value sets."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import cast

import pytest
from pydicom.sr._concepts_dict import concepts

from rpi_async.dicom.codes import Code
from rpi_async.store import demo, schema
from rpi_async.store import demo_data as d
from rpi_async.store.model import PatientRecord, Section
from rpi_async.store.reader import PatientStore

N = 150
RECORDS = list(demo.generate(N, seed=11))


def _build(path: Path, seed: int = 11, count: int = N) -> Path:
    demo.create_demo_database(path, patients=count, seed=seed)
    return path


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_same_seed_same_database(tmp_path: Path) -> None:
    a = _dump(_build(tmp_path / "a.sqlite3"))
    b = _dump(_build(tmp_path / "b.sqlite3"))
    assert a == b
    c = _dump(_build(tmp_path / "c.sqlite3", seed=12))
    assert a != c


def test_ids_and_issuers() -> None:
    ids = [(r.patient_id, r.issuer) for r in RECORDS]
    assert ids[0] == ("DEMO000001", "DEMO")
    assert ids[N - 1] == (f"DEMO{N:06d}", "DEMO")
    assert ids[N:] == [("DEMO-DUP", "ISSUER_A"), ("DEMO-DUP", "ISSUER_B")]
    assert len(set(ids)) == len(ids)


async def test_contract_in_the_store(tmp_path: Path) -> None:
    path = _build(tmp_path / "demo.sqlite3", count=20)
    store = await PatientStore.open(path, readers=1)
    try:
        [first] = await store.lookup("DEMO000001")
        both = await store.lookup("DEMO-DUP")
        [a] = await store.lookup("DEMO-DUP", "ISSUER_A")
    finally:
        await store.close()
    assert first.issuer == "DEMO"
    assert {r.issuer for r in both} == {"ISSUER_A", "ISSUER_B"}
    assert both[0].name != both[1].name or both[0].birth_date != both[1].birth_date
    assert a.issuer == "ISSUER_A"


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: f"{r.patient_id}-{r.issuer}")
def test_every_applicable_section_is_filled(record: PatientRecord) -> None:
    present = {f.section for f in record.facts}
    assert present == demo.applicable_sections(record.sex)
    if record.sex != "F":
        assert Section.GYNECOLOGICAL not in present
        assert Section.HORMONE not in present


def _members(cid: int) -> set[tuple[str, str]]:
    return {c.key for c in demo.context_group(cid)}


def test_codes_come_from_the_templates_value_sets() -> None:
    breast_procedures = _members(d.CID_BREAST_PROCEDURE)
    sides = _members(d.CID_SIDE)
    breast_findings = _members(d.CID_BREAST_FINDING)
    family = _members(d.CID_FAMILY_MEMBER)
    for record in RECORDS:
        by = record.by_section
        assert any(
            f.code is not None
            and f.code.key in breast_procedures
            and f.laterality is not None
            and f.laterality.key in sides
            and f.start
            for f in by[Section.PROCEDURE]
        )
        assert any(
            f.code is not None and f.code.key in breast_findings and f.laterality is not None
            for f in by[Section.PROBLEM]
        )
        for fact in by[Section.PROCEDURE]:  # the side a procedure's name implies is kept
            assert fact.code is not None
            name = fact.code.meaning.lower()
            if "left" in name and fact.laterality is not None:
                assert fact.laterality.meaning == "Left breast"
            if "right" in name and fact.laterality is not None:
                assert fact.laterality.meaning == "Right breast"
        risks = by[Section.RISK_FACTOR]
        assert any(
            f.code is not None
            and f.code.key in _members(d.CID_BREAST_RISK_FACTOR)
            and f.modifier is not None
            and f.modifier.key in family
            for f in risks
        )
        assert any(
            f.code is not None and f.code.key in _members(d.CID_GENERAL_RISK_FACTOR) for f in risks
        )
        assert any(
            f.code is not None and f.code.key in _members(d.CID_CARDIAC_RISK_FACTOR) for f in risks
        )
        for fact in risks:  # a family member only where the risk is a relative's condition
            assert fact.code is not None
            assert (fact.modifier is not None) == (fact.code.value in d.FAMILY_RISK_FACTORS)
        assert all(
            f.code is not None and f.code.key in _members(d.CID_SUBSTANCE)
            for f in by[Section.SUBSTANCE]
        )
        for fact in by[Section.MEDICATION]:
            assert fact.modifier is not None
            assert fact.start
            assert fact.text
            assert fact.ongoing is not None
        for fact in by.get(Section.HORMONE, ()):
            assert fact.code is not None
            assert fact.code.key in _members(d.CID_GYNECOLOGICAL_HORMONE)
        for fact in by[Section.FAMILY_HISTORY]:
            assert fact.modifier is not None
            assert fact.modifier.key in family
        social = {f.concept.key: f for f in by[Section.SOCIAL] if f.concept is not None}
        tobacco = social[("365981007", "SCT")].code
        assert tobacco is not None
        assert tobacco.key in _members(d.CID_SMOKING_HISTORY)
        assert ("228366006", "SCT") in social
        lab = {f.concept.key for f in by[Section.LAB] if f.concept is not None}
        assert lab == {("2086-7", "LN"), ("2089-1", "LN")}


def test_gynecological_history_is_consistent() -> None:
    for record in RECORDS:
        if record.sex != "F":
            continue
        values = {
            f.concept.value: f
            for f in record.section(Section.GYNECOLOGICAL)
            if f.concept is not None
        }
        gravida, para = values["11996-6"].number, values["11977-6"].number
        assert gravida is not None
        assert para is not None
        assert para <= gravida
        assert values["111518"].unit == Code(*d.YEARS)
        assert ("111520" in values) != ("11955-2" in values)  # menopause age, or last period


def test_dates_are_plausible() -> None:
    birth_years = [int(r.birth_date[:4]) for r in RECORDS]
    ref = d.REFERENCE_DATE.year
    assert all(ref - 96 <= y <= ref - 18 for y in birth_years)
    assert max(birth_years) - min(birth_years) > 40
    for record in RECORDS:
        for fact in record.facts:
            for value in (fact.start, fact.end):
                if value is not None:
                    assert re.fullmatch(r"\d{8}(\d{6})?", value)
                    assert record.birth_date <= value[:8] <= d.REFERENCE_DATE.strftime("%Y%m%d")
            if fact.start and fact.end:
                assert fact.start[:8] <= fact.end[:8]


def test_names_are_sex_consistent_and_varied() -> None:
    for record in RECORDS:
        family, given, *_ = record.name.split("^")
        assert family in d.FAMILY_NAMES
        if record.sex == "F":
            assert given in d.FEMALE_GIVEN_NAMES
        elif record.sex == "M":
            assert given in d.MALE_GIVEN_NAMES
    assert len({r.name for r in RECORDS}) > 0.9 * len(RECORDS)
    assert len(d.FAMILY_NAMES) >= 300
    assert min(len(d.FEMALE_GIVEN_NAMES), len(d.MALE_GIVEN_NAMES)) >= 150


def _pydicom_meanings(value: str, scheme: str) -> set[str]:
    out: set[str] = set()
    by_keyword = cast(dict[str, dict[str, tuple[str, list[int]]]], concepts.get(scheme, {}))
    for entries in by_keyword.values():
        if value in entries:
            meaning = entries[value][0]
            out.add(meaning)
            out.add(re.sub(r" \([a-z /]+\)$", "", meaning))  # without the FSN semantic tag
    return out


def _triple(item: object) -> tuple[str, str, str] | None:
    """A (value, scheme, meaning) at the head of a vocabulary entry, if it is one."""
    if isinstance(item, tuple) and item and isinstance(item[0], tuple):
        item = item[0]  # (triple, weight) and (triple, context group) entries
    if not isinstance(item, tuple) or len(item) < 3:
        return None
    value, scheme, meaning = item[:3]
    if not all(isinstance(v, str) for v in (value, scheme, meaning)):
        return None
    if scheme not in {"SCT", "DCM", "LN", "UCUM"}:
        return None
    return value, scheme, meaning


def _explicit_triples() -> list[tuple[str, str, str]]:
    triples: list[tuple[str, str, str]] = []
    for name in dir(d):
        value = getattr(d, name)
        if not isinstance(value, tuple):
            continue
        if all(isinstance(v, str) for v in value):
            single = _triple(value)
            triples.extend([single] if single is not None else [])
        else:
            triples.extend(t for t in map(_triple, value) if t is not None)
    return triples


def test_explicit_meanings_agree_with_pydicom() -> None:
    triples = _explicit_triples()
    assert len(triples) > 40
    for value, scheme, meaning in triples:
        Code(value, scheme, meaning)  # valid: meaning within 64 characters
        known = _pydicom_meanings(value, scheme)
        if known:
            assert meaning in known, (value, scheme, meaning, known)


def test_generation_has_no_failures_for_many_seeds() -> None:
    for seed in range(5):
        records = list(demo.generate(40, seed))
        assert len(records) == 42


def test_populate_writes_fixed_timestamps(tmp_path: Path) -> None:
    path = _build(tmp_path / "t.sqlite3", count=5)
    conn = schema.connect_writer(path)
    try:
        stamps = {r[0] for r in conn.execute("SELECT updated_at FROM patient")}
    finally:
        conn.close()
    assert stamps == {d.TIMESTAMP}
