"""The scope guard, with property-based tests over addresses and ranges."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vigie.errors import ScopeViolation
from vigie.scanner.scope import SPECIAL_NETWORKS, ScopeDecision, ScopeGuard

ipv4 = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
ipv6 = st.integers(min_value=0, max_value=2**128 - 1).map(ipaddress.IPv6Address)
addresses = st.one_of(ipv4, ipv6)


def is_special(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return True
    return any(address.version == n.version and address in n for n in SPECIAL_NETWORKS)


@given(addresses)
def test_empty_allow_admits_exactly_public_addresses(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    guard = ScopeGuard()
    assert guard.allows(address) == (not is_special(address))


@given(addresses, st.integers(min_value=0, max_value=32))
def test_deny_always_wins(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, prefix: int
) -> None:
    network = ipaddress.ip_network(
        f"{address}/{prefix if address.version == 4 else prefix * 4}", strict=False
    )
    guard = ScopeGuard(allow=(network,), deny=(network,))
    assert not guard.allows(address)


@given(ipv4)
def test_allow_list_limits_public_addresses(address: ipaddress.IPv4Address) -> None:
    allowed = ipaddress.ip_network("198.51.100.0/24")  # itself special: documentation range
    public = ipaddress.ip_network("41.73.0.0/16")
    guard = ScopeGuard(allow=(public,))
    expected = address in public
    assert guard.allows(address) == expected
    assert not ScopeGuard(allow=(public,)).allows(next(iter(allowed.hosts())))


@given(st.integers(min_value=0, max_value=2**24 - 1))
def test_loopback_only_when_named(offset: int) -> None:
    address = ipaddress.IPv4Address(int(ipaddress.IPv4Address("127.0.0.0")) + offset)
    assert ScopeGuard().decide(address) is ScopeDecision.SPECIAL
    assert ScopeGuard.from_cidrs(["0.0.0.0/0"]).decide(address) is ScopeDecision.SPECIAL
    assert ScopeGuard.from_cidrs(["127.0.0.0/8"]).allows(address)


@pytest.mark.parametrize(
    ("address", "decision"),
    [
        ("10.1.2.3", ScopeDecision.SPECIAL),
        ("192.168.1.1", ScopeDecision.SPECIAL),
        ("172.16.5.4", ScopeDecision.SPECIAL),
        ("100.64.1.1", ScopeDecision.SPECIAL),
        ("169.254.169.254", ScopeDecision.SPECIAL),
        ("224.0.0.1", ScopeDecision.SPECIAL),
        ("240.0.0.1", ScopeDecision.SPECIAL),
        ("::1", ScopeDecision.SPECIAL),
        ("fe80::1", ScopeDecision.SPECIAL),
        ("fd00::1", ScopeDecision.SPECIAL),
        ("::ffff:127.0.0.1", ScopeDecision.SPECIAL),
        ("41.73.10.1", ScopeDecision.IN_SCOPE),
        ("2c0f:f0f8::1", ScopeDecision.IN_SCOPE),
        ("not-an-ip", ScopeDecision.INVALID),
    ],
)
def test_known_ranges(address: str, decision: ScopeDecision) -> None:
    assert ScopeGuard().decide(address) is decision


def test_mapped_ipv6_is_judged_as_its_ipv4_host() -> None:
    guard = ScopeGuard.from_cidrs(allow=["127.0.0.0/8"], deny=["127.0.0.9/32"])
    assert guard.allows("::ffff:127.0.0.1")
    assert not guard.allows("::ffff:127.0.0.9")


def test_require_raises_scope_violation() -> None:
    with pytest.raises(ScopeViolation, match=r"10\.0\.0\.1"):
        ScopeGuard().require("10.0.0.1")
