"""CID membership from pydicom's PS3.16 tables, with SRT codes treated as SCT."""

from __future__ import annotations

import pytest

from rpi_async.dicom.codes import Code
from rpi_async.sr.content import ValueSet
from rpi_async.sr.valuesets import cid_members, current, is_member, key_of, members


def test_breast_risk_factor_cid() -> None:
    assert ("111559", "DCM") in cid_members(6081)
    assert ("429740004", "SCT") in cid_members(6081)
    assert ("161501007", "SCT") not in cid_members(6081)


def test_membership_is_by_value_and_scheme_not_meaning() -> None:
    vs = ValueSet(cid=6083)
    assert is_member(Code("287572003", "SCT", "Cyst aspiration"), vs)
    assert not is_member(Code("287572003", "DCM", "Cyst aspiration"), vs)


def test_a_code_belongs_only_to_the_groups_that_list_it() -> None:
    assert ("44808001", "SCT") in cid_members(3756)
    assert ("44808001", "SCT") not in cid_members(6087)
    # two pydicom keywords share this code; either one's groups count
    assert ("161445009", "SCT") in cid_members(3756)
    assert ("161445009", "SCT") in cid_members(6087)


def test_srt_codes_count_as_their_sct_equivalent() -> None:
    left_breast_srt = Code("T-04030", "SRT", "Left breast")
    assert key_of(left_breast_srt) == ("80248007", "SCT")
    assert current(left_breast_srt) == Code("80248007", "SCT", "Left breast")
    assert is_member(left_breast_srt, ValueSet(cid=6022))


def test_unknown_cid_has_no_members() -> None:
    assert cid_members(999999) == frozenset()


def test_enumerated_value_set() -> None:
    vs = ValueSet(codes=(Code("255594003", "SCT", "Complete"),))
    assert members(vs) == frozenset({("255594003", "SCT")})


def test_a_value_set_is_a_cid_or_codes() -> None:
    with pytest.raises(ValueError, match="either"):
        ValueSet()
    with pytest.raises(ValueError, match="either"):
        ValueSet(cid=1, codes=(Code("1", "DCM", "x"),))
