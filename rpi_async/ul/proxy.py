"""The PROXY protocol header (versions 1 and 2), read before the DICOM Upper Layer.

Theory of operation. A TCP load balancer in front of the server (HAProxy with
``send-proxy`` or ``send-proxy-v2``) opens its own connection to the server, so the
server sees the balancer's address. The PROXY protocol (haproxy.org, "The PROXY protocol
Versions 1 & 2", 2020/03/05) has the balancer send, as the very first bytes of the
connection, a header naming the client's address and port; after it the stream is the
client's own (here: DICOM PDUs).

- Version 1 (section 2.1) is one text line of at most 107 bytes:
  ``PROXY TCP4 <src> <dst> <sport> <dport>\\r\\n`` (``TCP6`` for IPv6), or
  ``PROXY UNKNOWN ...\\r\\n`` when the balancer does not know (then the connection's own
  address stands).
- Version 2 (section 2.2) is binary: the 12-byte signature ``\\r\\n\\r\\n\\0\\r\\nQUIT\\n``,
  one byte version (2) and command (``LOCAL`` 0: the balancer's own connection, a health
  check; ``PROXY`` 1), one byte address family and transport, a 16-bit big-endian length,
  then the addresses (IPv4: 12 bytes, IPv6: 36, UNIX: 216) and optional TLVs, skipped.

``ProxyReader`` is fed the connection's first bytes and returns the header once it is
complete (with the bytes after it), ``None`` while more are needed, or raises
``ProxyProtocolError``: the receiver must drop a connection without a valid header
(section 2: "the receiver MUST NOT try to guess"). Only connections from a trusted
balancer may carry a header (``is_trusted``), or any client could claim any address.
Pure: no I/O, no logging.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from dataclasses import dataclass

from rpi_async.errors import RpiError

V1_PREFIX = b"PROXY "
V1_MAX = 107  # the longest version 1 line, CRLF included (section 2.1)
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family/transport, length
V2_MAX = V2_FIXED + 65535

V2_COMMAND_LOCAL = 0x0
V2_COMMAND_PROXY = 0x1
# family/transport byte -> (address bytes, ip version); STREAM over INET and INET6 only.
V2_FAMILIES = {0x11: (4, 4), 0x21: (16, 6)}


class ProxyProtocolError(RpiError):
    """The connection does not start with a valid PROXY protocol header."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What the balancer said: the client's (address, port), or None (LOCAL, UNKNOWN)."""

    version: int
    source: tuple[str, int] | None
    destination: tuple[str, int] | None


def _v1(line: bytes) -> ProxyHeader:
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError("version 1 header is not ASCII") from None
    parts = text.split(" ")
    if len(parts) >= 2 and parts[1] == "UNKNOWN":
        return ProxyHeader(1, None, None)
    if len(parts) != 6 or parts[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"version 1 header malformed: {text[:40]!r}")
    family = 4 if parts[1] == "TCP4" else 6
    try:
        src, dst = ipaddress.ip_address(parts[2]), ipaddress.ip_address(parts[3])
        sport, dport = int(parts[4]), int(parts[5])
    except ValueError:
        raise ProxyProtocolError("version 1 header has an invalid address or port") from None
    if (
        src.version != family
        or dst.version != family
        or not (0 <= sport <= 65535 and 0 <= dport <= 65535)
    ):
        raise ProxyProtocolError("version 1 header has an invalid address or port")
    return ProxyHeader(1, (str(src), sport), (str(dst), dport))


def _v2(ver_cmd: int, family: int, body: bytes) -> ProxyHeader:
    if ver_cmd >> 4 != 2:
        raise ProxyProtocolError(f"version 2 header with version {ver_cmd >> 4}")
    command = ver_cmd & 0x0F
    if command == V2_COMMAND_LOCAL:
        return ProxyHeader(2, None, None)
    if command != V2_COMMAND_PROXY:
        raise ProxyProtocolError(f"version 2 header with unknown command {command}")
    if family not in V2_FAMILIES:  # UNSPEC, UNIX or datagrams: no TCP client address
        return ProxyHeader(2, None, None)
    size, ip_version = V2_FAMILIES[family]
    if len(body) < 2 * size + 4:
        raise ProxyProtocolError("version 2 header too short for its addresses")
    ip = ipaddress.IPv4Address if ip_version == 4 else ipaddress.IPv6Address
    src, dst = ip(body[:size]), ip(body[size : 2 * size])
    sport, dport = struct.unpack_from(">HH", body, 2 * size)
    return ProxyHeader(2, (str(src), sport), (str(dst), dport))


def read_proxy_header(buf: bytes) -> tuple[ProxyHeader, int] | None:
    """The header at the start of ``buf`` and its length; None: incomplete so far."""
    head = buf[: len(V2_SIGNATURE)]
    if head == V2_SIGNATURE[: len(head)]:
        if len(buf) < V2_FIXED:
            return None
        ver_cmd, family, length = struct.unpack_from(">BBH", buf, len(V2_SIGNATURE))
        if len(buf) < V2_FIXED + length:
            return None
        return _v2(ver_cmd, family, buf[V2_FIXED : V2_FIXED + length]), V2_FIXED + length
    head = buf[: len(V1_PREFIX)]
    if head != V1_PREFIX[: len(head)]:
        raise ProxyProtocolError("the connection does not start with a PROXY header")
    end = buf.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(buf) >= V1_MAX:
            raise ProxyProtocolError("version 1 header longer than 107 bytes")
        return None
    return _v1(buf[:end]), end + 2


class ProxyReader:
    """Buffers a connection's first bytes until its PROXY header is complete."""

    def __init__(self, peer_address: str, trusted: tuple[str, ...]) -> None:
        self.trusted = is_trusted(peer_address, trusted)
        self._buf = b""

    def feed(self, data: bytes) -> tuple[ProxyHeader, bytes] | None:
        """(header, the bytes after it) once complete; None: feed more."""
        if not self.trusted:
            raise ProxyProtocolError("not from a trusted proxy")
        self._buf += data
        found = read_proxy_header(self._buf)
        if found is None:
            return None
        header, used = found
        rest, self._buf = self._buf[used:], b""
        return header, rest


@functools.lru_cache(maxsize=16)
def _networks(
    trusted: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(n, strict=False) for n in trusted)


def check_trusted_proxies(trusted: tuple[str, ...]) -> None:
    """Raise ValueError naming an entry that is not an address or network."""
    for entry in trusted:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None


def is_trusted(address: str, trusted: tuple[str, ...]) -> bool:
    """Whether ``address`` (a connection's peer) is one of the ``trusted`` networks."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks(trusted))
