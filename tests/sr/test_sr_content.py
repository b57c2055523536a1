"""The template language: invariants of rows and of the shipped templates."""

from __future__ import annotations

import pytest

from rpi_async.dicom.codes import Code
from rpi_async.sr import concepts as c
from rpi_async.sr.content import (
    AttributeOf,
    EachFact,
    FactField,
    FactValue,
    Multiplicity,
    Relationship,
    Requirement,
    Row,
    Template,
    ValueType,
)
from rpi_async.sr.registry import TEMPLATES
from rpi_async.store.model import Section


def test_only_1_n_rows_iterate_facts() -> None:
    with pytest.raises(ValueError, match="1-n"):
        Row(Relationship.CONTAINS, ValueType.CODE, c.RISK_FACTOR, source=EachFact(Section.PROBLEM))
    with pytest.raises(ValueError, match="1-n"):
        Row(
            Relationship.CONTAINS,
            ValueType.CODE,
            c.RISK_FACTOR,
            multiplicity=Multiplicity.ONE_OR_MORE,
            source=FactField(FactValue.CODE),
        )


def test_num_rows_need_units_and_attributes_need_attribute_sections() -> None:
    with pytest.raises(ValueError, match="units"):
        Row(Relationship.CONTAINS, ValueType.NUM, c.PARA, source=AttributeOf(Section.GYNECOLOGICAL))
    with pytest.raises(ValueError, match="attribute section"):
        AttributeOf(Section.PROCEDURE)


def test_root_must_be_a_mandatory_bare_container() -> None:
    row = Row(Relationship.CONTAINS, ValueType.CONTAINER, c.HISTORY, Requirement.MANDATORY)
    with pytest.raises(ValueError, match="root"):
        Template("1", "x", row)


@pytest.mark.parametrize("tid", sorted(TEMPLATES))
def test_templates_start_with_the_language_item(tid: str) -> None:
    first = TEMPLATES[tid].root.children[0]
    assert first.concept == c.LANGUAGE_OF_CONTENT
    assert first.requirement is Requirement.MANDATORY


@pytest.mark.parametrize("tid", sorted(TEMPLATES))
def test_templates_use_current_snomed(tid: str) -> None:
    schemes = {row.concept.scheme for row in TEMPLATES[tid].root.walk()}
    assert "SRT" not in schemes


def test_unconfirmed_facts_are_recorded_in_the_data() -> None:
    notes = dict(TEMPLATES["9007"].unconfirmed)
    assert any("rows 10-13" in origin for origin in notes)
    assert TEMPLATES["3802"].unconfirmed
    assert all(note for _origin, note in TEMPLATES["9000"].unconfirmed)


def test_sub_templates_are_parameterised_not_copied() -> None:
    hormones = TEMPLATES["9000"].root.children[3]
    medications = TEMPLATES["9007"].root.children[2]
    assert (
        hormones.concept
        == medications.concept
        == Code("10160-0", "LN", "History of Medication use")
    )
    item_9000, item_9007 = hormones.children[0], medications.children[0]
    assert item_9000.value_set is not None
    assert item_9000.value_set.cid == 6080
    assert item_9007.value_set is None
    assert isinstance(item_9000.source, EachFact)
    assert item_9000.source.section is Section.HORMONE
