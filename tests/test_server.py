"""The serving process's own settings: the cyclic garbage collector after start-up."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from rpi_async.server import GC_THRESHOLDS, tune_collector


@pytest.fixture
def collector_restored() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("collector_restored")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    kept = [object() for _ in range(10)]  # something alive at start-up
    tune_collector()
    assert gc.get_freeze_count() > len(kept)
    assert gc.get_threshold() == GC_THRESHOLDS
    assert gc.isenabled()
