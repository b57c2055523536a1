"""The cheap dataset constructor behaves like pydicom's own."""

from __future__ import annotations

import copy

from pydicom.dataset import Dataset
from pydicom.tag import BaseTag

from rpi_async.dicom.codes import Code
from rpi_async.sr import dsbuild
from rpi_async.sr.dsbuild import code_sequence, element, new_dataset

VALUE_TYPE = BaseTag(0x0040A040)
CONCEPT_NAME = BaseTag(0x0040A043)


def test_the_fast_path_is_active_with_this_pydicom() -> None:
    assert dsbuild.new_dataset is dsbuild._cloned_dataset


def test_clone_equals_a_regular_dataset() -> None:
    fast = new_dataset({VALUE_TYPE: element(VALUE_TYPE, "CS", "CODE")})
    regular = Dataset()
    regular.ValueType = "CODE"
    assert fast == regular
    assert fast.__dict__.keys() == regular.__dict__.keys()
    assert copy.deepcopy(fast) == regular


def test_clones_do_not_share_mutable_state() -> None:
    first, second = new_dataset({}), new_dataset({})
    first.ValueType = "TEXT"
    first._private_blocks[(0x0009, "X")] = None  # type: ignore[assignment]
    assert "ValueType" not in second
    assert second._private_blocks == {}


def test_code_sequences_are_built_once() -> None:
    code = Code("121033", "DCM", "Subject Age")
    first = code_sequence(CONCEPT_NAME, code)
    assert first is code_sequence(CONCEPT_NAME, code)
    (item,) = first.value
    assert (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning) == (
        "121033",
        "DCM",
        "Subject Age",
    )
