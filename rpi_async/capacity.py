"""How many associations one server process holds: sized from its file descriptors and memory.

Theory of operation. Every open association costs one file descriptor and some memory:
about 16 KiB when idle (10,000 idle associations held at 163 MiB RSS, RESULTS.md), more
while a message is being received or an answer sent. ``max_associations = 0`` (the
default) asks for the most the process can hold without running out of either:

- the soft RLIMIT_NOFILE is raised to the hard limit first (at most ``FD_CEILING``), as
  a server does at start; ``FD_RESERVE`` descriptors stay for the database readers, the
  listening and metrics sockets, the audit trail and the logs;
- at most ``MEMORY_SHARE`` of the memory available at start, at ``BYTES_PER_ASSOCIATION``
  each, shared by the worker processes.

Beyond that limit an association is refused at once (A-ASSOCIATE-RJ, transient, local
limit exceeded), which a client retries, instead of failing for lack of a descriptor.
"""

from __future__ import annotations

import resource

import psutil

FD_CEILING = 1 << 20
FD_RESERVE = 128
BYTES_PER_ASSOCIATION = 256 * 1024
MEMORY_SHARE = 0.5


def raise_fd_limit() -> int:
    """Raise the soft file-descriptor limit to the hard one (capped); the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FD_CEILING if hard == resource.RLIM_INFINITY else min(hard, FD_CEILING)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return FD_CEILING if soft == resource.RLIM_INFINITY else soft


def max_associations(fd_limit: int, available_memory: int, workers: int = 1) -> int:
    """The associations one of ``workers`` processes can hold with these resources."""
    by_descriptors = fd_limit - FD_RESERVE
    by_memory = int(available_memory * MEMORY_SHARE) // BYTES_PER_ASSOCIATION // max(1, workers)
    return max(1, min(by_descriptors, by_memory))


def automatic_max_associations(workers: int = 1) -> tuple[int, str]:
    """(limit, why) for this process, after raising its descriptor limit."""
    fds = raise_fd_limit()
    memory = psutil.virtual_memory().available
    limit = max_associations(fds, memory, workers)
    why = f"file descriptors {fds}, {memory >> 20} MiB available, {workers} worker(s)"
    return limit, why


PER_PEER_SHARE = 16  # native engine: one address may hold 1/16 of max_associations
PER_PEER_FLOOR = 16


def automatic_per_peer(engine: str, max_associations: int, pynetdicom_workers: int) -> int:
    """``max_associations_per_peer = -1``: what one address may hold.

    Native engine: a sixteenth of ``max_associations`` (at least 16): a load generator on
    one machine gets 1,024 clients in when ``max_associations`` is sized automatically,
    and one peer still cannot take the slots of the others. pynetdicom engine: half its
    workers, since an idle association holds a worker there."""
    if engine == "pynetdicom":
        return max(1, pynetdicom_workers // 2)
    return max(PER_PEER_FLOOR, max_associations // PER_PEER_SHARE)
