from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import maxminddb
import pytest

from datafast.lib.geo import (
    EMPTY_LOCATION,
    BundledGeoLocator,
    GeoLocator,
    Location,
    MaxMindGeoLocator,
    create_geo_locator,
    public_ip,
)
from tests.helpers import city_record, write_city_mmdb

# Addresses whose registry country is long-standing and matches where the network is
# (checked against iptocc's data and each operator's home country).
BUNDLED_COUNTRIES = {
    "8.8.8.8": "US",  # Google Public DNS
    "2001:4860:4860::8888": "US",  # Google Public DNS, IPv6
    "::ffff:8.8.8.8": "US",  # IPv4-mapped (iptocc alone does not map it)
    "9.9.9.9": "US",  # Quad9 (IBM's 9.0.0.0/8)
    "80.156.0.1": "DE",  # Deutsche Telekom
    "194.25.2.129": "DE",  # T-Online DNS
    "2003::1": "DE",  # Deutsche Telekom, IPv6
    "133.242.0.1": "JP",  # SAKURA Internet (133.0.0.0/8: JPNIC)
    "60.32.0.1": "JP",  # NTT Communications (OCN)
    "2001:218::1": "JP",  # NTT Communications, IPv6
    "90.0.0.1": "FR",  # Orange
    "2a01:cb00::1": "FR",  # Orange, IPv6
    "212.27.48.10": "FR",  # Free
    "200.160.2.3": "BR",  # NIC.br
    "177.0.0.1": "BR",  # LACNIC's Brazilian range (NIC.br)
    "139.130.4.5": "AU",  # Telstra
    "2001:8000::1": "AU",  # Telstra, IPv6
}

NOT_PUBLIC = [
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "127.0.0.1",
    "0.0.0.0",
    "100.64.0.1",  # carrier-grade NAT
    "169.254.1.1",  # link-local
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "224.0.0.1",  # multicast
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fc00::1",
    "fd12:3456:789a::1",
    "2001:db8::1",
    "ff02::1",
    "::ffff:10.0.0.1",
    "",
    "not an ip",
    "1.2.3",
    "999.1.1.1",
    "8.8.8.8/32",
    "1" * 500,
]


@pytest.fixture(scope="module")
def bundled() -> BundledGeoLocator:
    return BundledGeoLocator()


@pytest.mark.parametrize(("ip", "country"), list(BUNDLED_COUNTRIES.items()))
def test_bundled_database_countries(bundled: BundledGeoLocator, ip: str, country: str) -> None:
    assert bundled.locate(ip) == Location(country=country)


@pytest.mark.parametrize("ip", NOT_PUBLIC)
def test_bundled_never_locates_private_reserved_or_invalid(bundled: BundledGeoLocator, ip: str) -> None:
    assert bundled.locate(ip) is EMPTY_LOCATION


def test_bundled_database_names_its_source(bundled: BundledGeoLocator) -> None:
    assert bundled.source.startswith("iptocc ")


def test_bundled_matches_iptocc_on_public_addresses(bundled: BundledGeoLocator) -> None:
    import iptocc

    for ip in ("8.8.8.8", "2001:218::1", "177.0.0.1"):
        assert bundled.locate(ip).country == iptocc.country_code(ip)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("DE", Location(country="DE")),
        ("de", Location(country="DE")),
        ("EU", EMPTY_LOCATION),  # registry pseudo-code for a multi-country block
        ("AP", EMPTY_LOCATION),
        ("ZZ", EMPTY_LOCATION),
        (None, EMPTY_LOCATION),
        ("", EMPTY_LOCATION),
        ("USA", EMPTY_LOCATION),
    ],
)
def test_bundled_keeps_only_country_codes(code: str | None, expected: Location) -> None:
    locator = BundledGeoLocator()
    locator._country_of = lambda _address: code
    assert locator.locate("80.156.0.1") == expected


def test_bundled_lookup_errors_give_an_empty_location() -> None:
    def fail(_address: str) -> str | None:
        raise RuntimeError("boom")

    locator = BundledGeoLocator()
    locator._country_of = fail
    assert locator.locate("80.156.0.1") is EMPTY_LOCATION


def test_bundled_lookups_are_cached(bundled: BundledGeoLocator) -> None:
    assert bundled.locate("133.242.0.1") is bundled.locate("133.242.0.1")


def test_bundled_locators_share_the_data(bundled: BundledGeoLocator) -> None:
    another = BundledGeoLocator()
    assert another._country_of is bundled._country_of
    assert another.locate("194.25.2.129") == Location(country="DE")


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("::ffff:8.8.4.4", "8.8.4.4"),
        (" 2001:4860:4860:0::8844 ", "2001:4860:4860::8844"),
        ("[2a00:1450:4001:81b::200e]:443", "2a00:1450:4001:81b::200e"),
        ("9.9.9.9", "9.9.9.9"),
        ("192.88.99.1", None),  # former 6to4 relay anycast
        ("2002:c000:0204::1", None),  # 6to4
        ("64:ff9b::808:808", None),  # NAT64
        ("2001::1", None),  # Teredo
        ("3fff::1", None),  # documentation
        ("01.2.3.4", None),  # leading zeros are ambiguous (octal?)
    ],
)
def test_public_ip(ip: str, expected: str | None) -> None:
    assert public_ip(ip) == expected


@pytest.mark.parametrize("ip", [ip for ip in NOT_PUBLIC if ip])
def test_public_ip_agrees_with_ipaddress(ip: str) -> None:
    assert public_ip(ip) is None
    try:
        address = ipaddress.ip_address(ip.partition("%")[0])
    except ValueError:
        return
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    assert not address.is_global or address.is_multicast


# --- MaxMind DB files, written by the test ---------------------------------------------------------


CITY_NETWORKS = {
    "81.2.69.0/24": city_record("GB", "ENG", "London"),
    "2a02:c7f::/32": city_record("GB", "SCT", "Edinburgh"),
    "216.160.83.56/29": city_record("US", "WA", "Milton"),
    "89.160.20.128/25": city_record("SE", None, None),  # a country-only record
    "175.16.199.0/24": {"registered_country": {"iso_code": "CN"}},
    "67.43.156.0/24": {"continent": {"code": "AS"}},  # nothing usable
    "10.0.0.0/8": city_record("US", "CA", "Nowhere"),  # private: never looked up
}


@pytest.fixture
def city_db(tmp_path: Path) -> Iterator[MaxMindGeoLocator]:
    locator = MaxMindGeoLocator(write_city_mmdb(tmp_path / "city.mmdb", CITY_NETWORKS))
    yield locator
    locator.close()


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("81.2.69.142", Location("GB", "GB-ENG", "London")),
        ("::ffff:81.2.69.142", Location("GB", "GB-ENG", "London")),
        ("2a02:c7f:1234::1", Location("GB", "GB-SCT", "Edinburgh")),
        ("216.160.83.60", Location("US", "US-WA", "Milton")),
        ("89.160.20.200", Location("SE", "", "")),
        ("175.16.199.5", Location("CN", "", "")),
        ("67.43.156.1", EMPTY_LOCATION),
        ("8.8.8.8", EMPTY_LOCATION),  # not in this file
        ("10.1.2.3", EMPTY_LOCATION),
        ("127.0.0.1", EMPTY_LOCATION),
        ("garbage", EMPTY_LOCATION),
        ("", EMPTY_LOCATION),
    ],
)
def test_maxmind_lookups(city_db: MaxMindGeoLocator, ip: str, expected: Location) -> None:
    assert city_db.locate(ip) == expected


def test_maxmind_ipv4_only_database(tmp_path: Path) -> None:
    path = write_city_mmdb(
        tmp_path / "v4.mmdb", {"81.2.69.0/24": city_record("GB", "ENG", "London")}, ip_version=4
    )
    locator = MaxMindGeoLocator(path)
    try:
        assert locator.locate("81.2.69.1") == Location("GB", "GB-ENG", "London")
        assert locator.locate("2a02:c7f::1") is EMPTY_LOCATION
    finally:
        locator.close()


def test_maxmind_lookup_errors_give_an_empty_location(city_db: MaxMindGeoLocator) -> None:
    city_db.close()
    city_db.cache_clear()
    assert city_db.locate("81.2.69.142") is EMPTY_LOCATION


def test_factory_uses_the_configured_file(tmp_path: Path) -> None:
    path = write_city_mmdb(tmp_path / "city.mmdb", CITY_NETWORKS)
    locator: GeoLocator = create_geo_locator(path)
    assert isinstance(locator, MaxMindGeoLocator)
    assert locator.locate("81.2.69.142").city == "London"
    locator.close()


def test_factory_falls_back_to_the_bundled_database() -> None:
    locator = create_geo_locator(None)
    assert isinstance(locator, BundledGeoLocator)
    assert locator.locate("8.8.8.8").country == "US"


def test_factory_fails_loudly_on_a_bad_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        create_geo_locator(tmp_path / "missing.mmdb")
    corrupt = tmp_path / "corrupt.mmdb"
    corrupt.write_bytes(b"not a maxmind database" * 10)
    with pytest.raises(maxminddb.InvalidDatabaseError):
        create_geo_locator(corrupt)
