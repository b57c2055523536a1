"""Access control: which peers may associate, and how many associations each may hold.

Theory of operation. The policy is decided once, here, and both engines ask it when an
A-ASSOCIATE-RQ arrives:

- an allow-list of calling AE titles (``allowed_calling_aes``), each optionally bound to
  address ranges: ``MODALITY1`` (any address) or ``MODALITY1@10.1.2.0/24`` (only from
  that network; list the title once per network). A title not on the list, or calling
  from an address outside its networks, is refused *rejected-permanent, service-user,
  calling-AE-title-not-recognized* (PS3.8 Table 9-21, reason 3): the standard has no
  reason for "wrong address", and a refusal should not tell a stranger which part of
  the request was wrong;
- a limit on concurrent associations per peer IP address
  (``max_associations_per_peer``): the one over it is refused *rejected-transient,
  service-provider (presentation), local-limit-exceeded* (reason 2), so a well-behaved
  peer retries later.

``admit`` reserves the peer's slot at decision time, so concurrent requests from one peer
cannot all slip under the limit; the engine calls ``release`` once for every admitted
connection when it closes. The class is thread-safe: pynetdicom decides in its
association threads.
"""

from __future__ import annotations

import enum
import ipaddress
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from rpi_async.config.values import IPNetwork, parse_allow_list

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refusal(enum.Enum):
    """Why an association is refused; the engine maps it to A-ASSOCIATE-RJ fields."""

    CALLING_AE_NOT_RECOGNIZED = "calling-ae-title-not-recognized"
    PEER_LIMIT = "local-limit-exceeded"


@dataclass(frozen=True, slots=True)
class Decision:
    """``refusal`` None means admitted (and a peer slot is held until ``release``)."""

    refusal: Refusal | None
    detail: str = ""

    @property
    def admitted(self) -> bool:
        return self.refusal is None


ADMITTED = Decision(None)


def _address(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class AccessPolicy:
    """The allow-list and the per-peer limit. ``admit`` / ``release`` per connection."""

    def __init__(
        self,
        allowed: Mapping[str, tuple[IPNetwork, ...] | None] | None = None,
        *,
        max_per_peer: int = 0,
    ) -> None:
        self.allowed = dict(allowed) if allowed else None
        self.max_per_peer = max_per_peer
        self._per_peer: Counter[str] = Counter()
        self._lock = threading.Lock()
        # Told of every refused calling AE title or address (the audit trail's Security
        # Alert); called from the engine's thread, so it must be thread-safe.
        self.on_refused: Callable[[str, str], None] | None = None

    @classmethod
    def from_settings(cls, allowed_calling_aes: Iterable[str], max_per_peer: int) -> AccessPolicy:
        return cls(parse_allow_list(allowed_calling_aes), max_per_peer=max_per_peer)

    @property
    def is_open(self) -> bool:
        """True when the policy admits everyone (nothing to check)."""
        return self.allowed is None and self.max_per_peer == 0

    def calling_ae_allowed(self, calling_ae: str, peer_address: str) -> bool:
        if self.allowed is None:
            return True
        title = calling_ae.strip(" ")
        if title not in self.allowed:
            return False
        networks = self.allowed[title]
        if networks is None:
            return True
        address = _address(peer_address)
        return address is not None and any(
            address.version == net.version and address in net for net in networks
        )

    def admit(self, calling_ae: str, peer_address: str) -> Decision:
        """Decide on one A-ASSOCIATE-RQ; an admitted peer holds a slot until ``release``."""
        if not self.calling_ae_allowed(calling_ae, peer_address):
            if self.on_refused is not None:
                self.on_refused(calling_ae.strip(), peer_address)
            return Decision(
                Refusal.CALLING_AE_NOT_RECOGNIZED,
                f"calling AE {calling_ae.strip()!r} is not allowed from {peer_address}",
            )
        if self.max_per_peer:
            with self._lock:
                if self._per_peer[peer_address] >= self.max_per_peer:
                    return Decision(
                        Refusal.PEER_LIMIT,
                        f"{peer_address} already holds {self.max_per_peer} associations",
                    )
                self._per_peer[peer_address] += 1
        return ADMITTED

    def release(self, peer_address: str) -> None:
        """Give back the slot of one admitted connection from ``peer_address``."""
        if not self.max_per_peer:
            return
        with self._lock:
            self._per_peer[peer_address] -= 1
            if self._per_peer[peer_address] <= 0:
                del self._per_peer[peer_address]

    def held(self, peer_address: str) -> int:
        with self._lock:
            return self._per_peer[peer_address]
