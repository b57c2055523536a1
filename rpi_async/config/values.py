"""Parsers of setting values that name network things: the calling-AE allow-list and
the audit trail's syslog target. Settings validate with them when loaded; the engines'
access policy and the audit trail's sender use what they return."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from rpi_async.ul.negotiation import valid_ae_title

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_PORTS = {"udp": 514, "tcp": 601, "tls": 6514}  # syslog, by transport


def parse_allow_list(entries: Iterable[str]) -> dict[str, tuple[IPNetwork, ...] | None]:
    """``AE`` / ``AE@CIDR`` entries as {title: networks, or None for any address}.

    The text after the last ``@`` is an address range when it parses as one; otherwise
    the whole entry is the title. A title listed bare allows any address. Raises
    ValueError with a one-line message.
    """
    out: dict[str, tuple[IPNetwork, ...] | None] = {}
    for entry in entries:
        title, network = entry, None
        head, sep, tail = entry.rpartition("@")
        if sep:
            try:
                network = ipaddress.ip_network(tail.strip(), strict=False)
                title = head
            except ValueError:
                if "/" in tail or tail.replace(".", "").isdigit():
                    raise ValueError(f"{entry!r}: {tail!r} is not an address range") from None
        title = title.strip(" ")
        if not valid_ae_title(title):
            raise ValueError(f"{title!r} is not a valid AE title (1-16 characters, no backslash)")
        if network is None:
            out[title] = None
        elif title not in out:
            out[title] = (network,)
        else:
            known = out[title]
            if known is not None:
                out[title] = (*known, network)
    return out


@dataclass(frozen=True, slots=True)
class SyslogTarget:
    """Where syslog messages go: ``udp``/``tcp``/``tls`` to host:port, or ``unix`` to a path."""

    transport: str
    host: str = ""
    port: int = 0
    path: str = ""

    def __str__(self) -> str:
        if self.transport == "unix":
            return self.path
        return f"{self.transport}://{self.host}:{self.port}"


def parse_syslog_target(text: str) -> SyslogTarget:
    """``udp://``, ``tcp://`` or ``tls://HOST[:PORT]``, ``unix:PATH`` or an absolute path."""
    text = text.strip()
    if text.startswith("/"):
        return SyslogTarget("unix", path=text)
    if text.startswith("unix:"):
        path = text[len("unix:") :].removeprefix("//")
        if not path.startswith("/"):
            raise ValueError(f"{text!r}: a unix socket needs an absolute path")
        return SyslogTarget("unix", path=path)
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in DEFAULT_PORTS:
        raise ValueError(
            f"{text!r}: use udp://HOST:PORT, tcp://HOST:PORT, tls://HOST:PORT or /dev/log"
        )
    if rest.startswith("["):  # [IPv6]:port
        host, _, tail = rest[1:].partition("]")
        port_text = tail.removeprefix(":")
    else:
        host, _, port_text = rest.partition(":")
    if not host:
        raise ValueError(f"{text!r}: no host")
    try:
        port = int(port_text) if port_text else DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError(f"{text!r}: {port_text!r} is not a port") from None
    if not 0 < port <= 65535:
        raise ValueError(f"{text!r}: {port} is not a port")
    return SyslogTarget(scheme, host=host, port=port)
