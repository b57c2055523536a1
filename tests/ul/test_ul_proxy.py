"""The PROXY protocol header parser (versions 1 and 2), fed whole and byte by byte."""

from __future__ import annotations

import socket
import struct

import pytest

from rpi_async.ul.proxy import (
    V2_SIGNATURE,
    ProxyHeader,
    ProxyProtocolError,
    ProxyReader,
    is_trusted,
    read_proxy_header,
)

TRUSTED = ("127.0.0.0/8", "::1")
DICOM = b"\x01\x00\x00\x00\x00\x10"  # what follows the header: the first PDU's bytes


def v2(command: int, family: int, body: bytes) -> bytes:
    return V2_SIGNATURE + struct.pack(">BBH", 0x20 | command, family, len(body)) + body


def v2_tcp4(src: str, sport: int, dst: str = "10.0.0.1", dport: int = 11112) -> bytes:
    addresses = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)
    return v2(1, 0x11, addresses)


IPV4 = socket.inet_aton("10.1.2.3") + socket.inet_aton("10.0.0.1")
IPV6 = socket.inet_pton(socket.AF_INET6, "2001:db8::7") + bytes(16)
NOOP_TLV = b"\x04\x00\x01\x00"  # PP2_TYPE_NOOP, skipped

CASES = [
    (b"PROXY TCP4 10.1.2.3 10.0.0.1 50412 11112\r\n", ("10.1.2.3", 50412)),
    (b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 11112\r\n", ("2001:db8::7", 4000)),
    (b"PROXY UNKNOWN\r\n", None),
    (v2_tcp4("10.1.2.3", 50412), ("10.1.2.3", 50412)),
    (v2(1, 0x11, IPV4 + struct.pack(">HH", 1, 2) + NOOP_TLV), ("10.1.2.3", 1)),
    (v2(1, 0x21, IPV6 + struct.pack(">HH", 4000, 1)), ("2001:db8::7", 4000)),
    (v2(0, 0x00, b""), None),  # LOCAL: the balancer's own health check
]


@pytest.mark.parametrize(("header", "source"), CASES)
def test_header_whole_and_byte_by_byte(header: bytes, source: tuple[str, int] | None) -> None:
    found = read_proxy_header(header + DICOM)
    assert found is not None
    assert found[0].source == source
    assert found[1] == len(header)
    reader = ProxyReader("127.0.0.1", TRUSTED)
    results = [reader.feed(header[i : i + 1]) for i in range(len(header) - 1)]
    assert results == [None] * (len(header) - 1)
    last = reader.feed(header[-1:] + DICOM)
    assert last is not None
    assert last[0].source == source
    assert last[1] == DICOM


BAD = [
    DICOM,  # plain DICOM: no header at all
    b"GET / HTTP/1.1\r\n",
    b"PROXY TCP4 10.1.2.3 10.0.0.1 50412\r\n",  # a field missing
    b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",  # family and address disagree
    b"PROXY TCP4 10.1.2.3 10.0.0.1 70000 11112\r\n",
    b"PROXY TCP4 " + b"1" * 120,  # no CRLF within 107 bytes
    V2_SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12),  # version 3
    V2_SIGNATURE + b"\x2f\x11\x00\x0c" + bytes(12),  # command 15
    V2_SIGNATURE + b"\x21\x11\x00\x04" + bytes(4),  # too short for two IPv4 addresses
]


@pytest.mark.parametrize("data", BAD)
def test_invalid_header_raises(data: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        read_proxy_header(data + b"\r\n" * 60)


def test_incomplete_is_none() -> None:
    assert read_proxy_header(b"PROX") is None
    assert read_proxy_header(V2_SIGNATURE[:5]) is None
    assert read_proxy_header(v2_tcp4("10.1.2.3", 1)[:20]) is None


def test_untrusted_peer_is_refused() -> None:
    reader = ProxyReader("192.0.2.9", TRUSTED)
    assert not reader.trusted
    with pytest.raises(ProxyProtocolError, match="trusted"):
        reader.feed(v2_tcp4("10.1.2.3", 1))


def test_trust() -> None:
    assert is_trusted("127.0.0.1", TRUSTED)
    assert is_trusted("::ffff:127.0.0.1", TRUSTED)
    assert is_trusted("::1", TRUSTED)
    assert not is_trusted("10.0.0.1", TRUSTED)
    assert is_trusted("10.0.5.9", ("10.0.5.0/24",))
    assert not is_trusted("not an address", TRUSTED)


def test_header_is_a_value() -> None:
    assert ProxyHeader(1, None, None) == ProxyHeader(1, None, None)
