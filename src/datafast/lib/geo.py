"""IP address → country, region and city, from an offline database (nothing is fetched at run time).

Two sources:

- ``BundledGeoLocator`` (the default): the table compiled into the ``iptocc`` package, built from
  the delegation statistics that the five Regional Internet Registries (AFRINIC, APNIC, ARIN,
  LACNIC, RIPE NCC) publish as public data; iptocc is rebuilt from them often, so upgrading the
  package refreshes it (``BundledGeoLocator.source`` names the version). IPv4 and IPv6, country
  only: ``region`` and ``city`` stay empty. The country is the one an address block is
  *registered* to, not necessarily where it is used: it agrees with commercial geolocation
  databases for about 95% of IPv4 addresses (less well for anycast services and networks that
  use their addresses across borders). The registries' pseudo-codes for multi-country blocks
  (``EU``, ``AP``) give no country.
- ``MaxMindGeoLocator``: a ``.mmdb`` file the operator configures (GeoLite2/GeoIP2 City or
  Country, or a compatible one such as DB-IP's), read with ``maxminddb``. For region and city and
  better country accuracy, set ``GEOIP_DATABASE=/path/to/GeoLite2-City.mmdb``.

Private, loopback, link-local, reserved, multicast and invalid addresses give an empty
``Location``; a lookup never raises. Results are cached per address (bounded).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import msgspec

from datafast.lib.clientip import parse_ip

__all__ = (
    "EMPTY_LOCATION",
    "BundledGeoLocator",
    "GeoLocator",
    "Location",
    "MaxMindGeoLocator",
    "create_geo_locator",
    "public_ip",
)

DEFAULT_CACHE_SIZE = 65_536
_MAX_IP_LENGTH = 100
"""Longer strings are not addresses: not looked up, not cached."""


class Location(msgspec.Struct, frozen=True):
    country: str = ""
    """ISO 3166-1 alpha-2 code (``US``), or "" when unknown."""
    region: str = ""
    """ISO 3166-2 code of the first subdivision (``US-CA``), or "" when unknown."""
    city: str = ""
    """City name in English, or "" when unknown."""


EMPTY_LOCATION = Location()


class GeoLocator(Protocol):
    def locate(self, ip: str) -> Location: ...


def _ranges(*cidrs: str) -> tuple[tuple[int, int], ...]:
    networks = [ipaddress.ip_network(c) for c in cidrs]
    return tuple((int(n.network_address), int(n.netmask)) for n in networks)


# Not globally routable unicast (IANA special-purpose registries, multicast, reserved).
_NON_GLOBAL_V4 = _ranges(
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
)  # fmt: skip
_GLOBAL_UNICAST_V6 = _ranges("2000::/3")[0]
_NON_GLOBAL_V6 = _ranges("2001::/23", "2001:db8::/32", "2002::/16", "3fff::/20")


def public_ip(ip: str) -> str | None:
    """The canonical text of a globally routable unicast address (IPv4-mapped → IPv4), else None."""
    address = parse_ip(ip) if ip else None
    if address is None:
        return None
    value = address.value
    if address.version == 4:
        ranges = _NON_GLOBAL_V4
    else:
        network, mask = _GLOBAL_UNICAST_V6
        if value & mask != network:  # loopback, ULA, link-local, multicast, NAT64, discard…
            return None
        ranges = _NON_GLOBAL_V6
    for network, mask in ranges:
        if value & mask == network:
            return None
    return address.text


def _country_code(value: object) -> str:
    if isinstance(value, str) and len(value) == 2 and value.isascii() and value.isalpha():
        return value.upper()
    return ""


class _CachingLocator:
    """Shared front: validate the address, cache the answer, never raise."""

    def __init__(self, cache_size: int) -> None:
        self._cached = lru_cache(maxsize=cache_size)(self._locate_uncached)

    def locate(self, ip: str) -> Location:
        if not ip or len(ip) > _MAX_IP_LENGTH:
            return EMPTY_LOCATION
        return self._cached(ip)

    def cache_clear(self) -> None:
        self._cached.cache_clear()

    def _locate_uncached(self, ip: str) -> Location:
        address = public_ip(ip)
        if address is None:
            return EMPTY_LOCATION
        try:
            return self._lookup(address)
        except Exception:
            return EMPTY_LOCATION

    def _lookup(self, address: str) -> Location:
        """Look up a public address in canonical form."""
        raise NotImplementedError


_NOT_COUNTRIES = frozenset({"AP", "EU", "ZZ"})
"""Registry pseudo-codes: Asia/Pacific, European Union (multi-country blocks), unknown."""


class BundledGeoLocator(_CachingLocator):
    """Country from the registry data compiled into the ``iptocc`` package.

    The table lives in the extension module (~1.7 MB, mapped on import); nothing is loaded per
    instance, so instances are cheap and all share it.
    """

    def __init__(self, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        import iptocc

        super().__init__(cache_size)
        self._country_of: Callable[[str], str | None] = iptocc.country_code

    @property
    def source(self) -> str:
        """Where the data comes from: the iptocc release (a snapshot of the registries' files)."""
        from importlib.metadata import version

        return f"iptocc {version('iptocc')} (RIR delegation statistics)"

    def _lookup(self, address: str) -> Location:
        country = _country_code(self._country_of(address))
        if not country or country in _NOT_COUNTRIES:
            return EMPTY_LOCATION
        return Location(country=country)


class MaxMindGeoLocator(_CachingLocator):
    """Country, first subdivision and city (English) from a MaxMind DB (``.mmdb``) file."""

    def __init__(self, path: Path | str, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        import maxminddb

        super().__init__(cache_size)
        self.path = Path(path)
        self._reader = maxminddb.open_database(str(self.path), mode=maxminddb.MODE_AUTO)
        self._ipv4_only = self._reader.metadata().ip_version == 4

    def close(self) -> None:
        self._reader.close()

    def _lookup(self, address: str) -> Location:
        if self._ipv4_only and ":" in address:
            return EMPTY_LOCATION
        record = self._reader.get(address)
        if not isinstance(record, dict):
            return EMPTY_LOCATION
        country_record = record.get("country") or record.get("registered_country")
        country = _country_code(country_record.get("iso_code")) if isinstance(country_record, dict) else ""
        region = ""
        subdivisions = record.get("subdivisions")
        if country and isinstance(subdivisions, list) and subdivisions and isinstance(subdivisions[0], dict):
            code = subdivisions[0].get("iso_code")
            if isinstance(code, str) and code:
                region = f"{country}-{code.upper()}"
        city = ""
        city_record = record.get("city")
        if isinstance(city_record, dict):
            names = city_record.get("names")
            if isinstance(names, dict):
                name = names.get("en")
                if isinstance(name, str):
                    city = name
        if not (country or region or city):
            return EMPTY_LOCATION
        return Location(country=country, region=region, city=city)


def create_geo_locator(mmdb_path: Path | None) -> GeoLocator:
    """The configured ``.mmdb`` file if any (an unreadable one raises), else the bundled database."""
    if mmdb_path is not None:
        return MaxMindGeoLocator(mmdb_path)
    return BundledGeoLocator()
