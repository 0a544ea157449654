"""A test world for RFC 8659 §3 (the relevant CAA set of each name), on 127.0.41.0/24.

Knot (127.0.41.1) serves a root zone of its own and every zone below it, so
that a climb meets real answers up to the top-level domain:

- ``z.`` and ``b.c.``: the two example trees of RFC 8659 §3 (no CAA anywhere
  above ``X.Y.Z``; ``issue "example.com"`` at ``B.C`` above ``A.B.C``);
- ``apex.caa41.`` restricts issuance, and below it: a name with its own
  ``iodef``-only set, names with none, a CNAME to a name with an ``iodef``-only
  set, a CNAME to a name without CAA in a zone without CAA, a DNAME;
- ``iodefonly.caa41.`` publishes ``iodef`` only, with a subdomain that restricts.

Unbound (127.0.41.2, its root stubbed to Knot) is the oracle's resolver: it
chases aliases across zones as any recursive resolver does. dnslib proxies in
front of Knot fail one query (127.0.41.3) or only count them (127.0.41.4).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.dns_server import (
    Faults,
    FaultyProxy,
    ZoneServer,
    free_port,
    start_faulty_proxy,
    start_zone_server,
)
from tests.scanner.mail_servers import Unbound, run_unbound

KNOT = "127.0.41.1"
UNBOUND = "127.0.41.2"
FLAKY = "127.0.41.3"  # SERVFAIL for "apex.caa41. CAA", the rest forwarded
COUNTER = "127.0.41.4"  # forwards everything, records what it was asked
ADDRESSES = (KNOT, UNBOUND, FLAKY, COUNTER)
NS = "@ NS ns1.nic.\n"


def _zone(origin: str, body: str) -> str:
    return (
        f"$ORIGIN {origin}\n$TTL 300\n@ SOA ns1.nic. hostmaster.nic. 1 3600 600 86400 300\n"
        f"{NS}{body}"
    )


ZONES: dict[str, str] = {
    ".": _zone(
        ".",
        "nic. NS ns1.nic.\nns1.nic. A 127.0.41.1\n"
        + "".join(f"{tld}. NS ns1.nic.\n" for tld in ("z", "c", "caa41")),
    ),
    "nic": _zone("nic.", "ns1 A 127.0.41.1\n"),
    # RFC 8659 §3, first example: no CAA record at any level above X.Y.Z
    "z": _zone("z.", "y A 127.0.41.50\nx.y A 127.0.41.50\n"),
    # RFC 8659 §3, second example: issue "example.com" at B.C, found from A.B.C
    "c": _zone("c.", "b NS ns1.nic.\n"),
    "b.c": _zone("b.c.", '@ CAA 0 issue "example.com"\na A 127.0.41.51\n'),
    "caa41": _zone("caa41.", "apex NS ns1.nic.\nother NS ns1.nic.\niodefonly NS ns1.nic.\n"),
    "apex.caa41": _zone(
        "apex.caa41.",
        '@ CAA 0 issue "ca.example"\n'
        'own CAA 0 iodef "mailto:caa@apex.caa41"\nown A 127.0.41.52\n'
        "none A 127.0.41.52\ndeep.none A 127.0.41.52\n"
        "www CNAME target.other.caa41.\n"
        "alias-empty CNAME plain.other.caa41.\n"
        "old DNAME other.caa41.\n",
    ),
    "other.caa41": _zone(
        "other.caa41.",
        'target CAA 0 iodef "mailto:caa@other.caa41"\ntarget A 127.0.41.53\nplain A 127.0.41.53\n',
    ),
    "iodefonly.caa41": _zone(
        "iodefonly.caa41.",
        '@ CAA 0 iodef "mailto:caa@iodefonly.caa41"\n'
        'sub CAA 0 issue "ca.example"\nsub A 127.0.41.54\nbare A 127.0.41.54\n',
    ),
}


@dataclass(frozen=True)
class CaaWorld:
    knot: ZoneServer
    port: int
    unbound: Unbound
    flaky: FaultyProxy
    counter: FaultyProxy


@contextlib.contextmanager
def caa_world(tmp_path: Path) -> Iterator[CaaWorld]:
    port = free_port(ADDRESSES)
    upstream = (KNOT, port)
    failing = Faults(servfail=frozenset({"apex.caa41. CAA"}))
    with (
        start_zone_server(tmp_path, KNOT, port, ZONES) as knot,
        run_unbound(UNBOUND, port, upstream, ["."], []) as unbound,
        start_faulty_proxy(FLAKY, port, upstream, failing) as flaky,
        start_faulty_proxy(COUNTER, port, upstream, Faults()) as counter,
    ):
        yield CaaWorld(knot, port, unbound, flaky, counter)
