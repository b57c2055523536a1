"""Root templates per SOP class."""

from __future__ import annotations

import pytest

from rpi_async.dicom.uids import SopClass
from rpi_async.sr.registry import default_template, resolve, supported

GENERAL = SopClass.GENERAL_RPI_QUERY
BREAST = SopClass.BREAST_RPI_QUERY
CARDIAC = SopClass.CARDIAC_RPI_QUERY


def test_defaults() -> None:
    assert default_template(GENERAL).tid == "9007"
    assert default_template(BREAST).tid == "9000"
    assert default_template(CARDIAC).tid == "3802"


def test_supported_lists_the_default_first() -> None:
    assert supported(GENERAL)[:3] == ("9007", "9000", "3802")
    assert "9002" not in supported(GENERAL)  # not root-capable
    assert supported(BREAST) == ("9000",)
    assert supported(CARDIAC) == ("3802",)
    assert supported(SopClass.VERIFICATION) == ()


@pytest.mark.parametrize(
    ("sop_class", "tid"),
    [(GENERAL, "9007"), (GENERAL, "9000"), (GENERAL, "3802"), (BREAST, "9000"), (CARDIAC, "3802")],
)
def test_resolve_supported(sop_class: SopClass, tid: str) -> None:
    template = resolve(sop_class, "DCMR", tid)
    assert template is not None
    assert template.tid == tid


@pytest.mark.parametrize(
    ("sop_class", "resource", "tid"),
    [
        (BREAST, "DCMR", "9007"),
        (CARDIAC, "DCMR", "9000"),
        (GENERAL, "DCMR", "1500"),
        (GENERAL, "DCMR", ""),
        (GENERAL, "99LOCAL", "9007"),
        (SopClass.VERIFICATION, "DCMR", "9007"),
    ],
)
def test_resolve_unsupported(sop_class: SopClass, resource: str, tid: str) -> None:
    assert resolve(sop_class, resource, tid) is None


def test_resolve_tolerates_padding() -> None:
    template = resolve(GENERAL, "DCMR ", " 9000")
    assert template is not None
    assert template.tid == "9000"
