"""max_associations = 0: sized from the file-descriptor limit and memory."""

from __future__ import annotations

import resource

from rpi_async import capacity


def test_limit_is_the_scarcer_of_descriptors_and_memory() -> None:
    plenty = 64 << 30
    assert capacity.max_associations(20_000, plenty) == 20_000 - capacity.FD_RESERVE
    by_memory = capacity.max_associations(1 << 20, 1 << 30)
    assert by_memory == int((1 << 30) * capacity.MEMORY_SHARE) // capacity.BYTES_PER_ASSOCIATION
    assert capacity.max_associations(1 << 20, 1 << 30, workers=2) == by_memory // 2
    assert capacity.max_associations(10, 0) == 1  # never zero


def test_a_default_server_admits_1024_clients_here() -> None:
    limit, why = capacity.automatic_max_associations()
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limit >= 1024 or soft < 1024 + capacity.FD_RESERVE, why
    assert str(soft) in why
