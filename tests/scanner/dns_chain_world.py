"""A test world for DNSSEC chains of trust from a root of its own, on 127.0.41.0/24.

Knot (127.0.41.11) serves and signs a root zone ``.``, whose DS records (as
Knot's ``keymgr`` computes them) are the test trust anchor, and below it:

- ``sec41.``: signed, DS at the root. Below it ``good.sec41`` (signed, DS),
  ``island.sec41`` (signed, no DS), ``wrongds.sec41`` (signed, a DS naming
  another zone's key) and ``plain.sec41`` (unsigned);
- ``broken41.``: signed, but the root publishes a DS that matches none of its
  keys (the chain breaks at the TLD); below it ``child.broken41`` (signed, DS);
- ``open41.``: unsigned (no DS at the root); below it ``signed.open41``
  (signed, with its DS published in the unsigned parent) and ``plain.open41``;
- ``n3sec41.`` and ``n3opt41.``: signed with NSEC3 (RFC 5155), the second
  with opt-out, so that a delegation without DS is proven by NSEC3: below them
  ``good.n3sec41`` and ``good.n3opt41`` (signed, DS), ``island.n3sec41``
  (signed, no DS) and ``plain.n3opt41`` (unsigned, in an opt-out span).

dnslib proxies forward to Knot: one counts the questions (127.0.41.12), one
drops ``sec41. DNSKEY`` (127.0.41.13).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests import dns_server
from tests.dns_server import FaultyProxy, ZoneServer

KNOT = "127.0.41.11"
COUNTER = "127.0.41.12"
DROPPER = "127.0.41.13"
HEAD = "$TTL 300\n@ SOA ns1.nic. hostmaster.nic. {serial} 3600 600 86400 300\n@ NS ns1.nic.\n"

# zone: its children (delegated with NS from it)
TREE: dict[str, tuple[str, ...]] = {
    ".": ("nic.", "sec41.", "broken41.", "open41.", "n3sec41.", "n3opt41."),
    "sec41.": ("good.sec41.", "island.sec41.", "wrongds.sec41.", "plain.sec41."),
    "broken41.": ("child.broken41.",),
    "open41.": ("signed.open41.", "plain.open41."),
    "n3sec41.": ("good.n3sec41.", "island.n3sec41."),
    "n3opt41.": ("good.n3opt41.", "plain.n3opt41."),
}
NSEC3 = {"n3sec41.": False, "n3opt41.": True}  # zone: opt-out
LEAVES = (
    "nic.",
    "good.sec41.",
    "island.sec41.",
    "wrongds.sec41.",
    "plain.sec41.",
    "child.broken41.",
    "signed.open41.",
    "plain.open41.",
    "good.n3sec41.",
    "island.n3sec41.",
    "good.n3opt41.",
    "plain.n3opt41.",
)
SIGNED = {
    ".",
    "sec41.",
    "broken41.",
    "good.sec41.",
    "island.sec41.",
    "wrongds.sec41.",
    "child.broken41.",
    "signed.open41.",
    "n3sec41.",
    "n3opt41.",
    "good.n3sec41.",
    "island.n3sec41.",
    "good.n3opt41.",
}


def zone_text(origin: str, records: list[str], serial: int = 1) -> str:
    body = "".join(f"{line}\n" for line in records)
    if origin == ".":
        body = f"ns1.nic. A {KNOT}\n" + body
    elif origin == "nic.":
        body = f"ns1 A {KNOT}\n" + body
    return f"$ORIGIN {origin}\n" + HEAD.format(serial=serial) + body


@dataclass(frozen=True)
class ChainWorld:
    knot: ZoneServer
    port: int
    counter: FaultyProxy
    dropper: FaultyProxy
    anchors: tuple[str, ...]  # the root's DS records (keymgr's): the trust anchor
    anchor_file: Path  # the same, as vigie's dns.trust_anchors file

    @property
    def resolver(self) -> str:
        return f"{KNOT}:{self.port}"


def _retarget(lines: list[str], owner: str) -> list[str]:
    """DS records moved to another owner: they name keys that owner does not have."""
    return [f"{owner} {line.split(None, 1)[1]}" for line in lines]


@contextlib.contextmanager
def chain_world(tmp_path: Path) -> Iterator[ChainWorld]:
    port = dns_server.free_port([KNOT, COUNTER, DROPPER])
    zones = {zone: zone_text(zone, []) for zone in [*TREE, *LEAVES]}
    with dns_server.start_zone_server(
        tmp_path, KNOT, port, zones, signed=SIGNED, nsec3=NSEC3
    ) as knot:
        good_ds = knot.ds_records("good.sec41.")
        sec41_ds = knot.ds_records("sec41.")
        delegations = {
            "sec41.": good_ds + _retarget(good_ds, "wrongds.sec41."),
            "broken41.": knot.ds_records("child.broken41."),
            "open41.": knot.ds_records("signed.open41."),  # DS in an unsigned parent
            "n3sec41.": knot.ds_records("good.n3sec41."),
            "n3opt41.": knot.ds_records("good.n3opt41."),
            ".": sec41_ds
            + _retarget(sec41_ds, "broken41.")  # broken41's matches nothing
            + knot.ds_records("n3sec41.")
            + knot.ds_records("n3opt41."),
        }
        for parent, ds in delegations.items():
            records = [f"{child} NS ns1.nic." for child in TREE[parent]] + ds
            first = ds[0].split()[0]
            knot.replace_zone(parent, zone_text(parent, records, 2), expect=(first, "DS"))
        anchors = tuple(knot.ds_records("."))
        anchor_file = tmp_path / "root-anchors.txt"
        anchor_file.write_text("".join(f"{line}\n" for line in anchors), encoding="utf-8")
        upstream = (KNOT, port)
        dropping = dns_server.Faults(drop=frozenset({"sec41. DNSKEY"}))
        with (
            dns_server.start_faulty_proxy(COUNTER, port, upstream, dns_server.Faults()) as counter,
            dns_server.start_faulty_proxy(DROPPER, port, upstream, dropping) as dropper,
        ):
            yield ChainWorld(knot, port, counter, dropper, anchors, anchor_file)
