"""The visitor's IP address: the direct peer, or the client named by trusted reverse proxies.

``X-Forwarded-For`` is written by every proxy a request passes through, each appending the
address it received the connection from, so its right end is what our own proxies saw and its
left end is whatever the client chose to send. It is therefore believed only when the direct
peer is one of our trusted proxies, and read right to left: trusted hops are skipped and the
first untrusted address is the client. Entries that are not IP addresses are ignored.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable
from functools import lru_cache
from typing import NamedTuple

from datafast.log import get_logger

__all__ = ("IP", "TrustedProxies", "client_ip", "normalize_ip", "parse_ip", "rate_limit_subject")

log = get_logger(__name__)

MAX_HOPS = 32
"""How many ``X-Forwarded-For`` entries are read from the right; the rest of a longer header is ignored."""
MAX_ENTRY_LENGTH = 100
"""Longer entries are not addresses (the longest, bracketed IPv6 with a zone and port, is ~70)."""


class IP(NamedTuple):
    text: str
    """Canonical form: dotted quad, or compressed lowercase IPv6 (RFC 5952)."""
    version: int
    value: int


def parse_ip(value: str) -> IP | None:
    """An address from a peer or a forwarded-for entry, or None when it is not one.

    Accepts ``1.2.3.4``, ``1.2.3.4:567``, ``2001:db8::1``, ``[2001:db8::1]:443``, quotes and
    spaces around any of them and IPv6 zone ids (dropped); IPv4-mapped IPv6 addresses
    (``::ffff:1.2.3.4``) become the IPv4 address. Cached (bounded).
    """
    if len(value) > MAX_ENTRY_LENGTH:
        return None
    return _parse_cached(value)


@lru_cache(maxsize=65_536)
def _parse_cached(value: str) -> IP | None:
    value = value.strip().strip('"').strip()
    if not value:
        return None
    if value[0] == "[":
        end = value.find("]")
        if end < 0:
            return None
        value = value[1:end]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    if ":" in value:
        try:
            packed = socket.inet_pton(socket.AF_INET6, value.partition("%")[0])
        except OSError:
            return None
        number = int.from_bytes(packed, "big")
        if number >> 32 == 0xFFFF:
            number &= 0xFFFF_FFFF
            return IP(socket.inet_ntop(socket.AF_INET, packed[12:]), 4, number)
        return IP(socket.inet_ntop(socket.AF_INET6, packed), 6, number)
    try:
        packed = socket.inet_pton(socket.AF_INET, value)  # strict dotted quad, no leading zeros
    except OSError:
        return None
    return IP(socket.inet_ntop(socket.AF_INET, packed), 4, int.from_bytes(packed, "big"))


def normalize_ip(value: str | None) -> str:
    """The canonical text of an address (compressed IPv6, IPv4-mapped unwrapped), or "" if invalid."""
    if not value:
        return ""
    address = parse_ip(value)
    return "" if address is None else address.text


class TrustedProxies:
    """A set of networks (e.g. ``127.0.0.1/32,10.0.0.0/8``) whose ``X-Forwarded-For`` is believed.

    Accepts an iterable of CIDRs or bare addresses, each item possibly comma-separated.
    An entry that is not an address or network raises ``ValueError``: it is a configuration error.
    """

    __slots__ = ("_results", "_trusted", "_v4", "_v6", "_warned", "networks")

    _CACHE_SIZE = 16_384
    _MAX_CACHED_HEADER = 512

    def __init__(self, networks: Iterable[str] | str = ()) -> None:
        items = [networks] if isinstance(networks, str) else list(networks)
        parsed: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in items:
            for part in item.split(","):
                part = part.strip()
                if not part:
                    continue
                try:
                    network = ipaddress.ip_network(part, strict=False)
                except ValueError:
                    raise ValueError(f"{part!r} is not an IP address or CIDR range") from None
                if isinstance(network, ipaddress.IPv6Network):
                    mapped = network.network_address.ipv4_mapped
                    if mapped is not None and network.prefixlen >= 96:
                        network = ipaddress.IPv4Network((mapped, network.prefixlen - 96))
                parsed.append(network)
        self.networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = tuple(parsed)
        self._v4 = tuple((int(n.network_address), int(n.netmask)) for n in parsed if n.version == 4)
        self._v6 = tuple((int(n.network_address), int(n.netmask)) for n in parsed if n.version == 6)
        self._trusted: dict[str, bool] = {}
        self._results: dict[tuple[str, str], str] = {}
        self._warned: set[str] = set()

    _MAX_WARNED = 20

    def untrusted_forwarder(self, peer: IP) -> None:
        """Say (once per peer, for the first few) that a peer sent ``X-Forwarded-For`` but is not
        trusted: behind a reverse proxy missing from ``TRUSTED_PROXIES`` every visitor gets the
        proxy's address (no countries, cookieless visitors merged into one)."""
        if peer.text in self._warned or len(self._warned) >= self._MAX_WARNED:
            return
        self._warned.add(peer.text)
        log.warning(
            "X-Forwarded-For from a peer not in TRUSTED_PROXIES: its header is ignored. If it is "
            "your reverse proxy, add its address or network to TRUSTED_PROXIES",
            peer=peer.text,
            trusted=[str(n) for n in self.networks],
        )

    def __repr__(self) -> str:
        return f"TrustedProxies({[str(n) for n in self.networks]!r})"

    def __bool__(self) -> bool:
        return bool(self.networks)

    def contains(self, address: IP) -> bool:
        trusted = self._trusted.get(address.text)
        if trusted is None:
            ranges = self._v4 if address.version == 4 else self._v6
            trusted = any(address.value & mask == network for network, mask in ranges)
            if len(self._trusted) >= self._CACHE_SIZE:
                self._trusted.clear()
            self._trusted[address.text] = trusted
        return trusted

    def __contains__(self, value: object) -> bool:
        if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
            value = str(value)
        if not isinstance(value, str):
            return False
        address = parse_ip(value)
        return address is not None and self.contains(address)

    def client(self, peer: IP, x_forwarded_for: str) -> str:
        """The client behind a trusted ``peer`` (see ``client_ip``), cached per (peer, header)."""
        key = (peer.text, x_forwarded_for)
        found = self._results.get(key)
        if found is not None:
            return found
        hops = x_forwarded_for.rsplit(",", MAX_HOPS)
        if len(hops) > MAX_HOPS:
            hops = hops[1:]
        result = ""
        leftmost = peer.text
        for hop in reversed(hops):
            address = parse_ip(hop)
            if address is None:
                continue
            if not self.contains(address):
                result = address.text
                break
            leftmost = address.text
        result = result or leftmost
        if len(x_forwarded_for) <= self._MAX_CACHED_HEADER:
            if len(self._results) >= self._CACHE_SIZE:
                self._results.clear()
            self._results[key] = result
        return result


def client_ip(peer: str | None, x_forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """The client's address as canonical text, or "" when neither the peer nor a believable header gives one.

    - An untrusted (or missing, or unparsable) peer: the peer itself; the header is ignored.
    - A trusted peer: the header's entries from the right, skipping trusted ones and invalid
      ones; the first untrusted address wins. If every entry is trusted, the leftmost valid
      one is the client (a client inside a trusted network). No valid entry: the peer.
    """
    peer_address = parse_ip(peer) if peer else None
    if peer_address is None:
        return ""
    if not x_forwarded_for:
        return peer_address.text
    if not trusted.contains(peer_address):
        trusted.untrusted_forwarder(peer_address)
        return peer_address.text
    return trusted.client(peer_address, x_forwarded_for)


def rate_limit_subject(ip: str) -> str:
    """The key a per-client rate limit counts under: the IPv4 address, or the IPv6 /64.

    One IPv6 subscriber is routinely given a whole /64, so counting single IPv6 addresses would
    give each of them 2^64 fresh buckets. Anything that is not an address is counted as itself.
    """
    parsed = parse_ip(ip)
    if parsed is None:
        return ip
    if parsed.version == 4:
        return parsed.text
    network = ipaddress.IPv6Network((parsed.value >> 64 << 64, 64))
    return str(network)
