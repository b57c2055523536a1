"""The bulk import's direct encoder writes the same compact document as encode_slots."""

from __future__ import annotations

from rpi_async.store import compact, demo
from rpi_async.store.writer import encode_fact


def test_encode_encoded_matches_encode_slots() -> None:
    checked = 0
    for record in demo.generate(200, seed=11):
        encoded = list(map(encode_fact, record.facts))
        expected = compact.encode_slots(compact.slots_from_encoded(*f) for f in encoded)
        assert compact.encode_encoded(encoded) == expected
        checked += 1
    assert checked == 202


def test_empty_record() -> None:
    assert compact.encode_encoded([]) == compact.EMPTY_DOC
