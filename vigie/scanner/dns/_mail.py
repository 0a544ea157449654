"""DMARC (RFC 7489) records: parsing and judging, no I/O.

Check IDs: ``dns.dmarc.missing``, ``dns.dmarc.policy_none``,
``dns.dmarc.invalid``, ``dns.dmarc.partial``.

SPF lives in ``_spf``; this module keeps the DMARC half of the mail checks
and the organisational domain (RFC 7489 §3.2), taken from the Public Suffix
List, never from the zone apex.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from publicsuffixlist import PublicSuffixList

from vigie.model import Finding
from vigie.scanner.lookups import clip

DMARC_POLICIES = ("none", "quarantine", "reject")
# RFC 7489 §6.4: dmarc-version = "v" *WSP "=" *WSP %x44 %x4d %x41 %x52 %x43 %x31 (case-sensitive).
_VERSION = re.compile(r"^v[ \t]*=[ \t]*DMARC1[ \t]*(?:;|$)")
_LOOSE_VERSION = re.compile(r"(?:^|;)\s*v\s*=\s*dmarc", re.IGNORECASE)
_PCT = re.compile(r"^[0-9]{1,3}$", re.ASCII)
_RI = re.compile(r"^[0-9]{1,10}$", re.ASCII)
_FO = re.compile(r"^[01ds](?:[ \t]*:[ \t]*[01ds])*$")


@functools.lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    # The PSL's default rule "*" applies to names under a suffix it does not list.
    return PublicSuffixList()


def organisational_domain(name: str) -> str | None:
    """RFC 7489 §3.2: the public suffix (from the Public Suffix List) plus one label.

    None when ``name`` is itself a public suffix (no organisation owns it).
    """
    bare = name.lower().rstrip(".")
    try:
        return _suffixes().privatesuffix(bare)
    except (ValueError, UnicodeError):
        return None


@dataclass(frozen=True)
class DmarcRecord:
    """One record that starts with ``v=DMARC1``, its tags and what is wrong with them."""

    text: str
    tags: Mapping[str, str]
    errors: tuple[str, ...] = ()

    @property
    def policy(self) -> str | None:
        value = self.tags.get("p", "").lower()
        return value if value in DMARC_POLICIES else None

    @property
    def subdomain_policy(self) -> str | None:
        """RFC 7489 §6.3 ``sp``: absent -> the ``p`` policy applies to subdomains."""
        if "sp" not in self.tags:
            return self.policy
        value = self.tags["sp"].lower()
        return value if value in DMARC_POLICIES else None

    @property
    def pct(self) -> int:
        """RFC 7489 §6.3 ``pct``: 0-100, default 100 (an invalid value counts as 100)."""
        value = self.tags.get("pct", "100")
        return int(value) if _PCT.match(value) and int(value) <= 100 else 100

    @property
    def has_report_address(self) -> bool:
        return any(
            uri.strip().lower().startswith("mailto:") for uri in self.tags.get("rua", "").split(",")
        )


def is_dmarc_record(text: str) -> bool:
    """RFC 7489 §6.4/§6.6.3: a record counts only if it starts exactly with ``v=DMARC1``.

    ``DMARC1`` is case-sensitive (the ABNF spells it with %x codes) and the
    ``v`` tag must come first; other records at ``_dmarc`` are discarded.
    """
    return bool(_VERSION.match(text))


def looks_like_dmarc(text: str) -> bool:
    """A discarded record that was meant as DMARC (``v=dmarc1``, ``p=reject; v=DMARC1``...)."""
    return bool(_LOOSE_VERSION.search(text)) and not is_dmarc_record(text)


def parse_dmarc(text: str) -> DmarcRecord:
    """Split a DMARC record into tags (RFC 7489 §6.4) and list invalid values (§6.3)."""
    tags: dict[str, str] = {}
    errors: list[str] = []
    for part in text.split(";")[1:]:
        if not part.strip():
            continue
        name, sep, value = part.partition("=")
        name = name.strip().lower()
        if not sep or not name:
            errors.append(f"'{clip(part.strip())}' is not a tag=value pair")
            continue
        if name in tags:
            errors.append(f"the '{clip(name)}' tag appears twice")
            continue
        tags[name] = value.strip()
    errors.extend(_tag_errors(tags))
    return DmarcRecord(text=text, tags=tags, errors=tuple(errors))


def _tag_errors(tags: Mapping[str, str]) -> list[str]:
    errors: list[str] = []
    for name in ("p", "sp"):
        if name in tags and tags[name].lower() not in DMARC_POLICIES:
            errors.append(f"{name}={clip(tags[name])} is not none, quarantine or reject")
    for name in ("adkim", "aspf"):
        if name in tags and tags[name].lower() not in ("r", "s"):
            errors.append(f"{name}={clip(tags[name])} is not r or s")
    pct = tags.get("pct")
    if pct is not None and not (_PCT.match(pct) and int(pct) <= 100):
        errors.append(f"pct={clip(pct)} is not an integer from 0 to 100")
    ri = tags.get("ri")
    if ri is not None and not _RI.match(ri):
        errors.append(f"ri={clip(ri)} is not a number of seconds")
    fo = tags.get("fo")
    if fo is not None and not _FO.match(fo):
        errors.append(f"fo={clip(fo)} is not a list of 0, 1, d, s")
    return errors


def dmarc_findings(
    domain: str,
    records: Sequence[str],
    organisational: tuple[str, Sequence[str]] | None = None,
) -> list[Finding]:
    """Judge the DMARC policy receivers find for ``domain`` (RFC 7489 §6.6.3 policy discovery).

    ``records`` are the TXT records at ``_dmarc.<domain>``; ``organisational``
    is (organisational domain, TXT records at its ``_dmarc``), consulted
    when the domain's own set holds no DMARC record (step 2: its ``sp``
    applies). Several records -> discovery ends (step 3): ``dns.dmarc.invalid``;
    so does a record without a valid ``p`` or with an invalid ``sp`` and no
    ``rua`` (step 6). Other invalid values are discarded for their defaults
    (§6.3) and only noted in the evidence.
    """
    own = [r for r in records if is_dmarc_record(r)]
    malformed = [r for r in records if looks_like_dmarc(r)]
    if own:
        return _judge(domain, own, f"_dmarc.{domain}", subdomain=False)
    findings: list[Finding] = []
    if malformed:
        reason = (
            "receivers discard this record: it must start with exactly 'v=DMARC1' "
            "(case-sensitive, first tag; RFC 7489 §6.4)"
        )
        findings.append(_invalid(domain, reason, malformed, f"_dmarc.{domain}"))
    if organisational is not None:
        parent, parent_records = organisational
        inherited = [r for r in parent_records if is_dmarc_record(r)]
        if inherited:
            judged = _judge(domain, inherited, f"_dmarc.{parent}", subdomain=True)
            return findings + [
                f for f in judged if not (malformed and f.check_id == "dns.dmarc.invalid")
            ]
    if findings:
        return findings
    return [_missing(domain, f"no DMARC record at _dmarc.{domain}", records)]


def _judge(domain: str, texts: list[str], where: str, *, subdomain: bool) -> list[Finding]:
    if len(texts) > 1:
        reason = f"{len(texts)} DMARC records at {where}: receivers apply none (RFC 7489 §6.6.3)"
        return [_invalid(domain, reason, texts, where)]
    record = parse_dmarc(texts[0])
    policy = record.subdomain_policy if subdomain else record.policy
    evidence: dict[str, object] = {"record": clip(record.text), "source": where}
    if subdomain:
        evidence["inherited"] = True
    if record.errors:
        evidence["tag_errors"] = list(record.errors[:10])
    if record.policy is None or _invalid_sp(record):
        what = "no valid p= tag" if record.policy is None else "an invalid sp= tag"
        if not record.has_report_address:
            reason = f"the DMARC record at {where} has {what} and no rua=: receivers discard it (RFC 7489 §6.6.3)"
            return [_invalid(domain, reason, texts, where)]
        evidence["reason"] = (
            f"{what}; with a rua= address receivers act as p=none (RFC 7489 §6.6.3)"
        )
        return [Finding(check_id="dns.dmarc.policy_none", domain=domain, evidence=evidence)]
    # Any other bad value (pct=, adkim=, aspf=, ri=, fo=, a malformed or repeated tag) is
    # discarded for its default, the record still applies (RFC 7489 §6.3): evidence only.
    findings: list[Finding] = []
    if policy is None:  # never: a missing or invalid p= or sp= returned above
        return findings
    evidence["policy"] = policy
    pct = record.pct
    if "pct" in record.tags:
        evidence["pct"] = clip(record.tags["pct"])
    if policy == "none" or (policy == "quarantine" and pct == 0):
        evidence["reason"] = (
            "p=none: receivers deliver mail that fails DMARC as usual"
            if policy == "none"
            else "p=quarantine with pct=0: no message is quarantined, receivers apply none (RFC 7489 §6.6.4)"
        )
        findings.append(Finding(check_id="dns.dmarc.policy_none", domain=domain, evidence=evidence))
    elif pct < 100:
        lower = "quarantine" if policy == "reject" else "none"
        evidence["reason"] = (
            f"p={policy} applies to {pct}% of failing mail; receivers apply {lower} to the rest (RFC 7489 §6.6.4)"
        )
        findings.append(Finding(check_id="dns.dmarc.partial", domain=domain, evidence=evidence))
    return findings


def _invalid_sp(record: DmarcRecord) -> bool:
    """RFC 7489 §6.6.3 step 6: an ``sp`` tag that is not valid spoils the record like a bad ``p``."""
    return "sp" in record.tags and record.subdomain_policy is None


def _invalid(domain: str, reason: str, records: Sequence[str], where: str) -> Finding:
    evidence = {"reason": reason, "records": [clip(r) for r in records][:10], "source": where}
    return Finding(check_id="dns.dmarc.invalid", domain=domain, evidence=evidence)


def _missing(domain: str, reason: str, records: Sequence[str]) -> Finding:
    evidence = {"reason": reason, "records": [clip(r) for r in records][:10]}
    return Finding(check_id="dns.dmarc.missing", domain=domain, evidence=evidence)
