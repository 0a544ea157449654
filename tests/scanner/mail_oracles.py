"""Verdicts on SPF and DMARC from libraries vigie did not write.

SPF: pyspf (the SPF reference implementation in Python, by the RFC's
editor's project) runs check_host() for a client address no test record
lists; its result maps onto vigie's IDs. DMARC: the ``dmarc`` package
parses the records (RFC 7489 grammar; as a receiver, it discards invalid
optional values, §6.3) and decides the disposition for a failing message; ``publicsuffix2`` (another Public Suffix List
implementation than vigie's) gives the organisational domain. Only the DNS
transport (the test resolver's address and port) is glue written here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dmarc
import dns.exception
import dns.resolver
import publicsuffix2
import spf

STRANGER = "203.0.113.254"  # listed by no test record


def oracle_resolver(ip: str, port: int) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [ip]
    resolver.port = port
    resolver.lifetime = 3.0
    return resolver


def txt_reader(resolver: dns.resolver.Resolver) -> Callable[[str], list[str]]:
    """The TXT strings of a name through ``resolver`` (none when it does not exist)."""

    def read(name: str) -> list[str]:
        try:
            answer = resolver.resolve(name, "TXT", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return []
        return [b"".join(r.strings).decode() for r in answer.rrset or ()]

    return read


@contextmanager
def pyspf_through(resolver: dns.resolver.Resolver) -> Iterator[None]:
    """Make pyspf ask ``resolver`` (pyspf's DNSLookup hook, same answers as its dnspython driver)."""

    def lookup(name: str, qtype: str, *_: Any, **__: Any) -> list[tuple[tuple[str, str], Any]]:
        found: list[tuple[tuple[str, str], Any]] = []
        try:
            answers = resolver.resolve(name, qtype, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return found
        except dns.exception.DNSException as exc:
            raise spf.TempError(f"DNS {exc}") from exc
        for rdata in answers.rrset or ():
            if qtype in ("A", "AAAA"):
                found.append(((name, qtype), rdata.address))
            elif qtype == "MX":
                found.append(((name, qtype), (rdata.preference, rdata.exchange)))
            elif qtype == "PTR":
                found.append(((name, qtype), rdata.target.to_text(True)))
            elif qtype == "TXT":
                found.append(((name, qtype), rdata.strings))
        return found

    saved = spf.DNSLookup
    spf.DNSLookup = lookup
    try:
        yield
    finally:
        spf.DNSLookup = saved


def pyspf_result(domain: str, resolver: dns.resolver.Resolver) -> str:
    """pyspf's check_host() result for a stranger sending as postmaster@domain."""
    with pyspf_through(resolver):
        result, _, _ = spf.query(i=STRANGER, s=f"postmaster@{domain}", h=domain).check()
    return str(result)


def spf_ids_from_result(result: str) -> set[str]:
    """What a receiver's result for a stranger says about the domain (vigie's IDs)."""
    return {
        "pass": {"dns.spf.permissive"},
        "neutral": {"dns.spf.permissive"},
        "fail": set(),
        "softfail": set(),
        "permerror": {"dns.spf.invalid"},
        "none": {"dns.spf.missing"},
    }.get(result, {f"temperror:{result}"})


def organisational_domain(name: str) -> str:
    """publicsuffix2's registrable domain; the PSL default rule "*" for unlisted suffixes."""
    found = publicsuffix2.get_sld(name, strict=True)
    if found is None:  # publicsuffix2 does not apply the default rule itself
        labels = name.split(".")
        return ".".join(labels[-2:])
    return str(found)


def _meant_as_dmarc(text: str) -> bool:
    return any(
        part.strip().lower().replace(" ", "").startswith("v=dmarc") for part in text.split(";")
    )


def dmarc_ids(name: str, txt: Callable[[str], list[str]]) -> set[str]:
    """RFC 7489 §6.6.3 discovery with the ``dmarc`` package's receiver parser and evaluation."""
    verdict = _dmarc_at(name, name, None, txt(f"_dmarc.{name}"))
    if verdict is not None:
        return verdict
    org = organisational_domain(name)
    if org != name:
        inherited = _dmarc_at(name, org, org, txt(f"_dmarc.{org}"))
        if inherited is not None:
            return inherited
    return {"dns.dmarc.missing"}


def _dmarc_at(name: str, owner: str, org: str | None, records: list[str]) -> set[str] | None:
    policies: list[Any] = []
    broken = 0
    attempts = 0
    for record in records:
        try:
            # strict=False: the package's receiver mode, invalid values other than p are
            # discarded for their defaults (RFC 7489 §6.3); strict mode refuses the record
            policies.append(dmarc.DMARC().parse_record(record, name, org, STRANGER, strict=False))
        except dmarc.RecordSyntaxError as exc:
            discarded = "must start with" in str(exc) or "is not a valid record" in str(exc)
            if not discarded:
                broken += 1
            elif _meant_as_dmarc(record):
                attempts += 1
    if broken or len(policies) > 1:
        return {"dns.dmarc.invalid"}
    if not policies:
        return {"dns.dmarc.invalid"} if attempts else None
    policy = policies[0]
    result = dmarc.DMARC().get_result(policy)  # a message that fails both SPF and DKIM
    disposition = result.disposition.value
    if disposition == "none" or (disposition == "quarantine" and policy.pct == 0):
        return {"dns.dmarc.policy_none"}
    if policy.pct < 100:
        return {"dns.dmarc.partial"}
    return set()
