from __future__ import annotations

import ipaddress
import logging

import pytest

from datafast.lib.clientip import MAX_HOPS, TrustedProxies, client_ip, normalize_ip

TRUSTED = TrustedProxies("127.0.0.1/32,10.0.0.0/8,::1/128,fd00::/8")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # no proxy header
        ("203.0.113.7", None, "203.0.113.7"),
        ("203.0.113.7", "", "203.0.113.7"),
        ("2001:db8::7", None, "2001:db8::7"),
        ("::ffff:203.0.113.7", None, "203.0.113.7"),
        # an untrusted peer's header is ignored: anyone can send one
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),
        ("192.168.1.1", "198.51.100.1", "192.168.1.1"),
        # a trusted peer: the rightmost untrusted entry is the client
        ("127.0.0.1", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.5", "198.51.100.1, 10.0.0.2", "198.51.100.1"),
        ("10.0.0.5", "1.1.1.1, 198.51.100.1, 10.0.0.2, 10.0.0.3", "198.51.100.1"),  # spoofed left part
        ("10.0.0.5", "198.51.100.1,10.0.0.2", "198.51.100.1"),
        ("::1", "2001:db8::1", "2001:db8::1"),
        ("::1", "[2001:db8::1]:4711", "2001:db8::1"),
        ("::1", "2001:DB8:0:0::1", "2001:db8::1"),
        ("::ffff:127.0.0.1", "198.51.100.1", "198.51.100.1"),  # IPv4-mapped peer
        ("127.0.0.1", "::ffff:198.51.100.1", "198.51.100.1"),  # IPv4-mapped entry
        ("127.0.0.1", "198.51.100.1:52814", "198.51.100.1"),  # with a port
        ("127.0.0.1", '"198.51.100.1"', "198.51.100.1"),  # quoted
        ("fd00::5", "2001:db8::1, fd00::9", "2001:db8::1"),
        ("127.0.0.1", "fe80::1%eth0", "fe80::1"),
        # invalid entries are skipped
        ("127.0.0.1", "198.51.100.1, unknown", "198.51.100.1"),
        ("127.0.0.1", "198.51.100.1, _hidden, , 10.0.0.2", "198.51.100.1"),
        ("127.0.0.1", "garbage", "127.0.0.1"),
        ("127.0.0.1", "999.1.1.1, 10.0.0.9", "10.0.0.9"),
        ("127.0.0.1", "x" * 5000, "127.0.0.1"),
        # every entry trusted: the leftmost is the client
        ("127.0.0.1", "10.1.2.3, 10.0.0.2", "10.1.2.3"),
        # peer missing or invalid
        (None, "198.51.100.1", ""),
        ("", None, ""),
        ("not-an-ip", "198.51.100.1", ""),
    ],
)
def test_client_ip(peer: str | None, forwarded: str | None, expected: str) -> None:
    assert client_ip(peer, forwarded, TRUSTED) == expected


def test_nothing_trusted_means_the_peer() -> None:
    assert client_ip("127.0.0.1", "198.51.100.1", TrustedProxies()) == "127.0.0.1"
    assert not TrustedProxies()


def test_long_headers_are_read_from_the_right_only() -> None:
    hops = ["198.51.100.1"] + ["10.0.0.1"] * (MAX_HOPS + 5)
    # the real client is past the window, so the leftmost address inside it is taken
    assert client_ip("127.0.0.1", ", ".join(hops), TRUSTED) == "10.0.0.1"
    hops = ["192.0.2.9", *(["10.0.0.1"] * (MAX_HOPS - 1))]
    assert client_ip("127.0.0.1", ", ".join(hops), TRUSTED) == "192.0.2.9"


def test_trusted_proxies_parsing() -> None:
    trusted = TrustedProxies(["127.0.0.1", "10.0.0.0/8, 192.168.0.0/16", "::1", "::ffff:172.16.0.0/108"])
    assert [str(n) for n in trusted.networks] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "192.168.0.0/16",
        "::1/128",
        "172.16.0.0/12",
    ]
    assert "10.200.0.1" in trusted
    assert "::ffff:10.200.0.1" in trusted
    assert "172.20.1.1" in trusted
    assert ipaddress.ip_address("192.168.3.3") in trusted
    assert "11.0.0.1" not in trusted
    assert "::2" not in trusted
    assert "nonsense" not in trusted
    assert 42 not in trusted
    assert TrustedProxies("10.0.0.1/8").networks == (ipaddress.ip_network("10.0.0.0/8"),)  # host bits


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "localhost", "10.0.0.0/8,nope"])
def test_trusted_proxies_reject_bad_configuration(bad: str) -> None:
    with pytest.raises(ValueError, match="is not an IP address or CIDR range"):
        TrustedProxies(bad)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2001:0DB8::0001", "2001:db8::1"),
        ("::ffff:1.2.3.4", "1.2.3.4"),
        ("[::1]:80", "::1"),
        (" 1.2.3.4 ", "1.2.3.4"),
        ("", ""),
        (None, ""),
        ("1.2.3.4.5", ""),
    ],
)
def test_normalize_ip(value: str | None, expected: str) -> None:
    assert normalize_ip(value) == expected


def test_a_forwarded_header_from_an_untrusted_peer_is_ignored_and_reported_once_per_peer(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A reverse proxy missing from TRUSTED_PROXIES: every visitor would get its address. Say so."""
    trusted = TrustedProxies("127.0.0.1/32")
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert client_ip("172.18.0.5", "203.0.113.9", trusted) == "172.18.0.5"
        assert client_ip("127.0.0.1", "203.0.113.9", trusted) == "203.0.113.9"  # trusted: believed
        assert client_ip("172.18.0.6", None, trusted) == "172.18.0.6"  # no header: nothing to say
    written = caplog.text + "".join(capsys.readouterr())
    assert written.count("peer not in TRUSTED_PROXIES") == 1, written
    assert "172.18.0.5" in written
    assert "172.18.0.6" not in written
