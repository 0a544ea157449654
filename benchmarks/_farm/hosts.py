"""Farm hosts: one address, name and configuration profile each.

Host ``i`` (from 0) lives at ``127.100.(1 + i // 250).(1 + i % 250)``, so 1,000
hosts span four /24s of 127.0.0.0/8, and answers as ``host-<i>.bench.gouv.example``.
Profiles rotate so that every size has the same mix of modern and legacy servers.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import Enum

ZONE = "bench.gouv.example"
PARENT_ZONE = "gouv.example"
FARM_NETWORK = "127.100.0.0/16"
DNS_ADDRESS = "127.100.0.53"  # the zone's name server and vigie's resolver
HOSTS_PER_SUBNET = 250
MAX_HOSTS = 250 * 254


class Profile(str, Enum):
    """How a farm host is configured (TLS and HTTP headers)."""

    MODERN = "modern"  # ECDSA, TLS 1.2-1.3, ECDHE AEAD only, every security header, HTTPS redirect
    INTERMEDIATE = "intermediate"  # RSA, TLS 1.2-1.3, DHE 2048 too, short HSTS, no CSP
    LEGACY = "legacy"  # RSA, TLS 1.0-1.2, every suite, DH 1024, no header, version disclosed
    SLOPPY = "sloppy"  # self-signed RSA, TLS 1.2 only, no forward secrecy, insecure cookie


PROFILE_CYCLE = (Profile.MODERN, Profile.INTERMEDIATE, Profile.LEGACY, Profile.SLOPPY)


@dataclass(frozen=True)
class FarmHost:
    index: int
    ip: str
    name: str
    profile: Profile


def farm_hosts(count: int) -> list[FarmHost]:
    """The first ``count`` farm hosts."""
    if not 1 <= count <= MAX_HOSTS:
        raise ValueError(f"the farm holds 1 to {MAX_HOSTS} hosts, not {count}")
    hosts = []
    for index in range(count):
        subnet, offset = divmod(index, HOSTS_PER_SUBNET)
        ip = str(ipaddress.IPv4Address(f"127.100.{1 + subnet}.{1 + offset}"))
        hosts.append(
            FarmHost(
                index=index,
                ip=ip,
                name=f"host-{index}.{ZONE}",
                profile=PROFILE_CYCLE[index % len(PROFILE_CYCLE)],
            )
        )
    return hosts
