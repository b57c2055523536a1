"""Coded concepts: the (code value, coding scheme designator, code meaning) triple."""

from __future__ import annotations

from dataclasses import dataclass

from pydicom.dataset import Dataset


@dataclass(frozen=True, slots=True)
class Code:
    """A coded concept as used in SR content items (PS3.3 Table 8.8-1)."""

    value: str
    scheme: str
    meaning: str

    def __post_init__(self) -> None:
        if not self.value or not self.scheme or not self.meaning:
            raise ValueError(f"incomplete code {self.value!r}/{self.scheme!r}/{self.meaning!r}")
        if len(self.scheme) > 16:
            raise ValueError(f"coding scheme designator too long: {self.scheme!r}")
        if len(self.meaning) > 64:
            raise ValueError(f"code meaning longer than 64 characters: {self.meaning!r}")

    @property
    def key(self) -> tuple[str, str]:
        """Identity of the concept: meaning is display text, not identity."""
        return (self.value, self.scheme)

    def to_dataset(self) -> Dataset:
        """One item of a Code Sequence."""
        ds = Dataset()
        if len(self.value) > 16:
            ds.LongCodeValue = self.value
        else:
            ds.CodeValue = self.value
        ds.CodingSchemeDesignator = self.scheme
        ds.CodeMeaning = self.meaning
        return ds

    @classmethod
    def from_dataset(cls, ds: Dataset) -> Code:
        value = ds.get("CodeValue") or ds.get("LongCodeValue") or ds.get("URNCodeValue") or ""
        return cls(str(value), str(ds.CodingSchemeDesignator), str(ds.CodeMeaning))

    def __str__(self) -> str:
        return f'({self.value}, {self.scheme}, "{self.meaning}")'
