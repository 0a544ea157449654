"""A test world for the DNS checks against the standards, on 127.0.24.0/24 by default.

Knot serves a signed parent zone ``vtest.`` with the DS records Knot's own
``keymgr`` computes for the child zones it signs, plus the child zones:
a well-configured signed zone, an island (signed, no DS), a zone whose DS
names another key, an unsigned zone, CAA cases, an organisation with a
delegated sub-zone, and ``gouv.ml.`` (a real public suffix) with a name
inside it. SPF and DMARC cases are names of ``vtest.`` itself: under the
Public Suffix List's default rule each is its own organisational domain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.dns_server import ZoneServer, free_port, start_zone_server

KNOT = "127.0.24.1"
SOA = "@ SOA ns1.vtest. hostmaster.vtest. {serial} 3600 600 86400 300"
NS = "@ NS ns1.vtest.\n"
MX = "@ MX 10 mx.vtest.\n"
STRANGER = "203.0.113.254"  # listed by no test record: the oracle's client address


def zone(origin: str, body: str, serial: int = 1) -> str:
    soa = SOA.format(serial=serial)
    return f"$ORIGIN {origin}.\n$TTL 300\n{soa}\n{NS}{body}"


# SPF cases: name -> (records, what pyspf and vigie must say for a stranger)
SPF_CASES: dict[str, list[str]] = {
    "spf-good": ["v=spf1 mx include:spf-strict.vtest -all"],
    "spf-strict": ["v=spf1 ip4:192.0.2.0/24 -all"],
    "spf-open": ["v=spf1 +all"],
    "spf-neutral": ["v=spf1 ip4:192.0.2.0/24 ?all"],
    "spf-noall": ["v=spf1 mx"],
    "spf-softinc": ["v=spf1 include:spf-soft.vtest -all"],
    "spf-soft": ["v=spf1 ~all"],
    "spf-includes-open": ["v=spf1 include:spf-open.vtest -all"],
    "spf-redirect-open": ["v=spf1 redirect=spf-open.vtest"],
    "spf-redirect-good": ["v=spf1 redirect=spf-good.vtest"],
    # 6 DNS terms here + 6 through redirect= (the redirect itself is one of the 6)
    "spf-six": ["v=spf1 a a:h1.vtest a:h2.vtest a:h3.vtest a:h4.vtest redirect=spf-six-b.vtest"],
    "spf-six-b": ["v=spf1 a:h1.vtest a:h2.vtest a:h3.vtest a:h4.vtest a:h5.vtest a:h6.vtest -all"],
    # exactly 10: allowed
    "spf-ten": ["v=spf1 a:h1.vtest a:h2.vtest a:h3.vtest a:h4.vtest redirect=spf-ten-b.vtest"],
    "spf-ten-b": ["v=spf1 a:h1.vtest a:h2.vtest a:h3.vtest a:h4.vtest a:h5.vtest -all"],
    "spf-eleven-flat": ["v=spf1 " + " ".join(f"a:h{n % 6 + 1}.vtest" for n in range(11)) + " -all"],
    "spf-three-voids": ["v=spf1 a:nx1.vtest a:nx2.vtest a:nx3.vtest -all"],
    "spf-two-voids": ["v=spf1 a:nx1.vtest a:nx2.vtest -all"],
    "spf-include-none": ["v=spf1 include:spf-norecord.vtest -all"],
    "spf-norecord": ["not an spf record"],
    "spf-two": ["v=spf1 -all", "v=spf1 mx -all"],
    "spf-syntax": ["v=spf1 ip4:300.0.0.1 -all"],
    "spf-include-syntax": ["v=spf1 include:spf-syntax.vtest -all"],
    "spf-redirect-none": ["v=spf1 redirect=spf-norecord.vtest"],
    "spf-exists-all": ["v=spf1 exists:h1.vtest -all"],
    "spf-exists-macro": ["v=spf1 exists:%{i}._spf.vtest -all"],
    "spf-loop": ["v=spf1 include:spf-loop.vtest -all"],
    "spf-mx-many": ["v=spf1 mx:manymx.vtest -all"],
    "spf-unknown-mod": ["v=spf1 foo=bar -all"],
    "spf-bad-macro": ["v=spf1 include:%{z}.vtest -all"],
    "spf-missing": [],
}

# DMARC cases in vtest.: name -> _dmarc records
DMARC_CASES: dict[str, list[str]] = {
    "dm-reject": ["v=DMARC1; p=reject"],
    "dm-none": ["v=DMARC1; p=none; rua=mailto:d@vtest"],
    "dm-lower": ["v=dmarc1; p=reject"],
    "dm-notfirst": ["p=reject; v=DMARC1"],
    "dm-pct50": ["v=DMARC1; p=quarantine; pct=50"],
    "dm-pct0-reject": ["v=DMARC1; p=reject; pct=0"],
    "dm-pct0-quarantine": ["v=DMARC1; p=quarantine; pct=0"],
    "dm-pct100": ["v=DMARC1; p=quarantine; pct=100"],
    "dm-badpct": ["v=DMARC1; p=reject; pct=abc"],
    "dm-badp": ["v=DMARC1; p=maybe"],
    "dm-two": ["v=DMARC1; p=reject", "v=DMARC1; p=none"],
    "dm-missing": [],
}

# Every mail name of the world, and the registered domains its scans are told about
MAIL_NAMES = [
    *(f"{name}.vtest" for name in SPF_CASES),
    *(f"{name}.vtest" for name in DMARC_CASES),
    "sub.org.vtest",
    "sub.orgnone.vtest",
    "agence.gouv.ml",
]
REGISTERED = {"vtest", "gouv.ml", "org.vtest", "orgnone.vtest"}

CHILD_ZONES = {
    "signed.vtest": '@ CAA 0 issue "ca.example"\n',
    "island.vtest": '@ CAA 0 issue "ca.example"\n',
    "wrongds.vtest": '@ CAA 0 issue "ca.example"\n',
    "plain.vtest": '@ CAA 0 issue "ca.example"\n',
    "iodef.vtest": '@ CAA 0 iodef "mailto:caa@vtest"\n',
    "caaok.vtest": '@ CAA 0 iodef "mailto:caa@vtest"\n@ CAA 0 issue "ca.example"\n',
    "caacrit.vtest": '@ CAA 128 tbs "unknown"\n',
    "org.vtest": '_dmarc TXT "v=DMARC1; p=reject; sp=quarantine"\nsub NS ns1.vtest.\n',
    "sub.org.vtest": MX,
    "orgnone.vtest": '_dmarc TXT "v=DMARC1; p=reject; sp=none"\nsub NS ns1.vtest.\n',
    "sub.orgnone.vtest": MX,
    "gouv.ml": '_dmarc TXT "v=DMARC1; p=reject"\nagence MX 10 mx.vtest.\n',
    # signed, and its parent (example.) is served nowhere: the DS question reaches only it
    "alone.example": '@ CAA 0 issue "ca.example"\n',
}
SIGNED = {"vtest", "signed.vtest", "island.vtest", "wrongds.vtest", "alone.example"}


def parent_zone(ds: list[str], serial: int = 1, address: str = KNOT) -> str:
    """The zone ``vtest.``; its hosts get addresses of ``address``'s /24 (where Knot runs)."""
    net = address.rpartition(".")[0]
    body = [f"ns1 A {address}", f"mx A {net}.2", '@ CAA 0 issue "ca.example"']
    body += [f"h{n} A {net}.{10 + n}" for n in range(1, 7)]
    body += [f"manymx MX {n} h{n % 6 + 1}.vtest." for n in range(11)]
    for child in CHILD_ZONES:
        if child.endswith(".vtest") and child.count(".") == 1:
            body.append(f"{child.removesuffix('.vtest')} NS ns1.vtest.")
    text = "\n".join(body) + "\n"
    for name, records in SPF_CASES.items():
        text += f"{name} MX 10 mx.vtest.\n"
        text += "".join(f'{name} TXT "{record}"\n' for record in records)
        text += f'_dmarc.{name} TXT "v=DMARC1; p=reject"\n'
    for name, records in DMARC_CASES.items():
        text += f'{name} MX 10 mx.vtest.\n{name} TXT "v=spf1 -all"\n'
        text += "".join(f'_dmarc.{name} TXT "{record}"\n' for record in records)
    text += "".join(f"{line}\n" for line in ds)
    return zone("vtest", text, serial)


@dataclass(frozen=True)
class StandardsWorld:
    knot: ZoneServer
    port: int
    ds: tuple[str, ...]  # what vtest. publishes
    anchor: tuple[str, ...]  # DNSKEY records of vtest. (the trust anchor)

    @property
    def resolver(self) -> str:
        return f"{self.knot.address}:{self.port}"


@contextlib.contextmanager
def standards_world(tmp_path: Path, address: str = KNOT) -> Iterator[StandardsWorld]:
    """The world on ``address`` (default 127.0.24.1; another /24 for another test module)."""
    port = free_port([address])
    zones = {"vtest": parent_zone([], address=address)}
    zones.update({name: zone(name, body) for name, body in CHILD_ZONES.items()})
    with start_zone_server(tmp_path, address, port, zones, signed=SIGNED) as knot:
        signed_ds = knot.ds_records("signed.vtest")
        wrong = [line.replace("signed.vtest.", "wrongds.vtest.", 1) for line in signed_ds]
        ds = tuple(signed_ds + wrong)
        knot.replace_zone(
            "vtest",
            parent_zone(list(ds), serial=2, address=address),
            expect=("signed.vtest.", "DS"),
        )
        anchor = tuple(knot.dnskey_records("vtest"))
        yield StandardsWorld(knot, port, ds, anchor)
