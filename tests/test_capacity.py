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


def test_per_peer_limit_sized_from_the_engine() -> None:
    # Native: a sixteenth of max_associations, so 1,024 clients from one address get in
    # when max_associations is sized for 16,384 or more; never below 16.
    assert capacity.automatic_per_peer("native", 19_872, 32) == 1_242
    assert capacity.automatic_per_peer("native", 16_384, 32) == 1_024
    assert capacity.automatic_per_peer("native", 64, 32) == capacity.PER_PEER_FLOOR
    # pynetdicom: half its workers, an idle association holding one.
    assert capacity.automatic_per_peer("pynetdicom", 19_872, 32) == 16
    assert capacity.automatic_per_peer("pynetdicom", 19_872, 1) == 1


def test_a_default_server_admits_1024_clients_from_one_address() -> None:
    limit, _ = capacity.automatic_max_associations()
    per_peer = capacity.automatic_per_peer("native", limit, 32)
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert per_peer >= 1024 or soft < 16 * 1024 + capacity.FD_RESERVE
