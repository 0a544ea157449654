"""The one place that says yes or no to an address.

Every probe calls :meth:`ScopeGuard.check` (or :meth:`ScopeGuard.require`)
with the address it is about to contact, after DNS resolution and after every
HTTP redirect. Rules, in order:

1. an address inside ``deny`` is out of scope, whatever ``allow`` says;
2. an address inside a special range (private, loopback, link-local, CGNAT,
   multicast, reserved, unspecified...) is out of scope unless an ``allow``
   network that names that range explicitly contains it; a broad allow such as
   ``0.0.0.0/0`` does not let special ranges in;
3. with ``allow`` empty, any other (public) address is in scope; with ``allow``
   set, only addresses inside it are.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from vigie.errors import ScopeViolation

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

SPECIAL_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.88.99.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "::/128",
        "::1/128",
        "::ffff:0:0/96",
        "64:ff9b::/96",
        "64:ff9b:1::/48",
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "2002::/16",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    )
)


class ScopeDecision(str, Enum):
    IN_SCOPE = "in_scope"
    DENIED = "denied"  # inside an explicit deny network
    SPECIAL = "special"  # private/loopback/reserved... not explicitly allowed
    NOT_ALLOWED = "not_allowed"  # outside a non-empty allow list
    INVALID = "invalid"  # not an IP address at all
    OUTSIDE_MANDATE = "outside_mandate"  # outside the networks the agency's mandate names


def _special_network_of(address: IPAddress) -> IPNetwork | None:
    for network in SPECIAL_NETWORKS:
        if address.version == network.version and address in network:
            return network
    return None


def _names_explicitly(allowed: IPNetwork, special: IPNetwork) -> bool:
    """An allow entry names a special range when it lies inside that range."""
    return allowed.version == special.version and allowed.subnet_of(special)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ScopeGuard:
    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_cidrs(cls, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> ScopeGuard:
        return cls(
            allow=tuple(ipaddress.ip_network(c, strict=False) for c in allow),
            deny=tuple(ipaddress.ip_network(c, strict=False) for c in deny),
        )

    def decide(self, address: str | IPAddress) -> ScopeDecision:
        try:
            ip = ipaddress.ip_address(address) if isinstance(address, str) else address
        except ValueError:
            return ScopeDecision.INVALID
        # An IPv4-mapped IPv6 address reaches the IPv4 host: judge that host.
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip.version == net.version and ip in net for net in self.deny):
            return ScopeDecision.DENIED
        containing = [net for net in self.allow if ip.version == net.version and ip in net]
        special = _special_network_of(ip)
        if special is not None:
            if any(_names_explicitly(net, special) for net in containing):
                return ScopeDecision.IN_SCOPE
            return ScopeDecision.SPECIAL
        if self.allow and not containing:
            return ScopeDecision.NOT_ALLOWED
        return ScopeDecision.IN_SCOPE

    def allows(self, address: str | IPAddress) -> bool:
        return self.decide(address) is ScopeDecision.IN_SCOPE

    def require(self, address: str | IPAddress) -> None:
        """Raise :class:`ScopeViolation` unless ``address`` may be contacted."""
        decision = self.decide(address)
        if decision is not ScopeDecision.IN_SCOPE:
            raise ScopeViolation(f"{address} is out of scope ({decision.value})")
