"""SPF (RFC 7208) and DMARC (RFC 7489) records: parsing and judging, no I/O.

Check IDs: ``dns.spf.missing``, ``dns.spf.permissive``, ``dns.dmarc.missing``,
``dns.dmarc.policy_none``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vigie.model import Finding

MAX_TEXT = 512  # records are untrusted text: evidence keeps this much
MAX_SPF_LOOKUPS = 10  # RFC 7208 §4.6.4: more DNS-querying terms is a permerror
MAX_REDIRECTS = 5  # how many ``redirect=`` hops vigie follows before giving up

QUALIFIERS = "+-~?"
# Mechanisms and whether their argument is required / optional / absent.
_MECHANISMS = {
    "all": "none",
    "include": "required",
    "a": "optional",
    "mx": "optional",
    "ptr": "optional",
    "ip4": "required",
    "ip6": "required",
    "exists": "required",
}
_LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
_MODIFIER_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_DUAL_CIDR = re.compile(r"^(?P<domain>[^/]*)(?:/(?P<v4>\d+))?(?:/(?P<v6>/\d+))?$")


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


# --- SPF ----------------------------------------------------------------------


@dataclass(frozen=True)
class SpfPolicy:
    """What one ``v=spf1`` record says, and what is wrong with its syntax."""

    text: str
    all_qualifier: str | None  # "+", "-", "~" or "?" of the ``all`` term; None without one
    redirect: str | None
    errors: tuple[str, ...]  # any of these makes the record a permerror
    warnings: tuple[str, ...]


def is_spf_record(text: str) -> bool:
    """RFC 7208 §4.5: the version tag, then a space or nothing."""
    return text[:6].lower() == "v=spf1" and (len(text) == 6 or text[6] == " ")


def select_spf(records: Sequence[str]) -> list[str]:
    """The SPF records among a name's TXT records."""
    return [record for record in records if is_spf_record(record)]


def parse_spf(text: str) -> SpfPolicy:
    """Parse one ``v=spf1`` record into its verdict-relevant parts."""
    errors: list[str] = []
    warnings: list[str] = []
    all_qualifier: str | None = None
    redirects: list[str] = []
    explanations = 0
    lookups = 0
    for term in text.split()[1:]:
        if all_qualifier is not None and not _is_modifier(term):
            warnings.append(f"'{_clip(term)}' after 'all' is never evaluated")
        if _is_modifier(term):
            name, _, value = term.partition("=")
            problem = _modifier_problem(name, value)
            if problem:
                errors.append(problem)
            if name.lower() == "redirect":
                redirects.append(value.lower().rstrip("."))
                lookups += 1
            elif name.lower() == "exp":
                explanations += 1
            continue
        qualifier, mechanism, argument = _split_directive(term)
        problem = _mechanism_problem(mechanism, argument, term)
        if problem:
            errors.append(problem)
            continue
        if mechanism in _LOOKUP_TERMS:
            lookups += 1
        if mechanism == "ptr":
            warnings.append("'ptr' is deprecated (RFC 7208 §5.5) and slow for receivers")
        if mechanism == "all" and all_qualifier is None:
            all_qualifier = qualifier
    if len(redirects) > 1:
        errors.append("more than one 'redirect=' modifier")
    if explanations > 1:
        errors.append("more than one 'exp=' modifier")
    if lookups > MAX_SPF_LOOKUPS:
        errors.append(
            f"{lookups} terms need DNS lookups; receivers give up after {MAX_SPF_LOOKUPS}"
        )
    if all_qualifier is not None and redirects:
        warnings.append("'redirect=' is ignored because the record has an 'all' term")
    return SpfPolicy(
        text=text,
        all_qualifier=all_qualifier,
        redirect=redirects[0] if len(redirects) == 1 and all_qualifier is None else None,
        errors=tuple(errors),
        warnings=tuple(warnings),
    )


def _is_modifier(term: str) -> bool:
    name, sep, _ = term.partition("=")
    return bool(sep) and ":" not in name and "/" not in name


def _modifier_problem(name: str, value: str) -> str:
    if not _MODIFIER_NAME.match(name):
        return f"'{_clip(name)}=' is not a valid modifier name"
    if name.lower() in ("redirect", "exp") and not value:
        return f"'{name}=' without a domain"
    return ""


def _split_directive(term: str) -> tuple[str, str, str | None]:
    qualifier = "+"
    if term[0] in QUALIFIERS:
        qualifier, term = term[0], term[1:]
    mechanism, sep, argument = term.partition(":")
    if not sep and "/" in mechanism:  # "a/24", "mx/24//64"
        mechanism, slash, rest = mechanism.partition("/")
        return qualifier, mechanism.lower(), slash + rest
    return qualifier, mechanism.lower(), argument if sep else None


def _mechanism_problem(mechanism: str, argument: str | None, term: str) -> str:
    kind = _MECHANISMS.get(mechanism)
    if kind is None:
        return f"unknown mechanism '{_clip(term)}'"
    if kind == "none" and argument is not None:
        return f"'{_clip(term)}': 'all' takes no argument"
    if kind == "required" and not argument:
        return f"'{_clip(term)}': '{mechanism}' needs an argument"
    if kind == "optional" and argument == "":
        return f"'{_clip(term)}': a ':' must be followed by a domain"
    if mechanism in ("ip4", "ip6") and argument:
        return _network_problem(mechanism, argument, term)
    if mechanism in ("a", "mx") and argument:
        return _dual_cidr_problem(argument, term)
    return ""


def _network_problem(mechanism: str, argument: str, term: str) -> str:
    version = 4 if mechanism == "ip4" else 6
    try:
        network = ipaddress.ip_network(argument, strict=False)
    except ValueError:
        return f"'{_clip(term)}' is not a valid IPv{version} network"
    if network.version != version:
        return f"'{_clip(term)}' is not a valid IPv{version} network"
    return ""


def _dual_cidr_problem(argument: str, term: str) -> str:
    match = _DUAL_CIDR.match(argument)
    if match is None:
        return f"'{_clip(term)}' has a malformed prefix length"
    v4 = match.group("v4")
    v6 = match.group("v6")
    if (v4 is not None and int(v4) > 32) or (v6 is not None and int(v6[1:]) > 128):
        return f"'{_clip(term)}' has a prefix length out of range"
    return ""


def spf_findings(
    domain: str, records: Sequence[str], redirects: Mapping[str, Sequence[str]] | None = None
) -> list[Finding]:
    """Judge a mail domain's TXT records; ``redirects`` holds the TXT records of
    ``redirect=`` targets, fetched beforehand (a missing key means "not known").
    """
    spf = select_spf(records)
    if not spf:
        return [_spf_missing(domain, "no SPF record (TXT 'v=spf1 ...')", [])]
    if len(spf) > 1:
        reason = f"{len(spf)} SPF records: receivers treat this as an error (RFC 7208 §4.5) and apply none"
        return [_spf_missing(domain, reason, spf)]
    chain = [parse_spf(spf[0])]
    known = redirects or {}
    while chain[-1].redirect is not None and len(chain) <= MAX_REDIRECTS:
        target = chain[-1].redirect
        if target not in known:
            return []  # the redirect target could not be read: no verdict
        targets = select_spf(known[target])
        if len(targets) != 1:
            reason = (
                f"'redirect={target}' leads to {len(targets)} SPF records: an error (RFC 7208 §6.1)"
            )
            return [_spf_missing(domain, reason, [p.text for p in chain], chain)]
        chain.append(parse_spf(targets[0]))
    return _judge_spf_chain(domain, chain)


def _judge_spf_chain(domain: str, chain: list[SpfPolicy]) -> list[Finding]:
    errors = [error for policy in chain for error in policy.errors]
    texts = [policy.text for policy in chain]
    if errors:
        reason = "the SPF record has syntax errors: receivers get a permerror and apply none of it"
        return [_spf_missing(domain, reason, texts, chain)]
    final = chain[-1]
    if final.redirect is not None:
        return []  # more redirects than vigie follows: no verdict
    if final.all_qualifier in ("+", "?"):
        reason = (
            f"the record ends in '{final.all_qualifier}all': any server may send mail as {domain}"
        )
        return [_spf_permissive(domain, reason, texts, chain)]
    if final.all_qualifier is None:
        reason = "no 'all' term and no redirect: unmatched senders get 'neutral', as with '?all' (RFC 7208 §4.7)"
        return [_spf_permissive(domain, reason, texts, chain)]
    return []


def _spf_evidence(
    reason: str, records: Sequence[str], chain: Sequence[SpfPolicy]
) -> dict[str, object]:
    evidence: dict[str, object] = {"reason": reason, "records": [_clip(r) for r in records]}
    errors = [e for policy in chain for e in policy.errors]
    warnings = [w for policy in chain for w in policy.warnings]
    if errors:
        evidence["syntax_errors"] = errors[:20]
    if warnings:
        evidence["warnings"] = warnings[:20]
    return evidence


def _spf_missing(
    domain: str, reason: str, records: Sequence[str], chain: Sequence[SpfPolicy] = ()
) -> Finding:
    return Finding(
        check_id="dns.spf.missing", domain=domain, evidence=_spf_evidence(reason, records, chain)
    )


def _spf_permissive(
    domain: str, reason: str, records: Sequence[str], chain: Sequence[SpfPolicy]
) -> Finding:
    evidence = _spf_evidence(reason, records, chain)
    evidence["all"] = f"{chain[-1].all_qualifier}all" if chain[-1].all_qualifier else None
    return Finding(check_id="dns.spf.permissive", domain=domain, evidence=evidence)


# --- DMARC --------------------------------------------------------------------

DMARC_POLICIES = ("none", "quarantine", "reject")


@dataclass(frozen=True)
class DmarcRecord:
    text: str
    tags: Mapping[str, str]

    @property
    def policy(self) -> str | None:
        value = self.tags.get("p", "").lower()
        return value if value in DMARC_POLICIES else None

    @property
    def subdomain_policy(self) -> str | None:
        value = self.tags.get("sp", "").lower()
        return value if value in DMARC_POLICIES else self.policy

    @property
    def has_report_address(self) -> bool:
        return any(
            uri.strip().lower().startswith("mailto:") for uri in self.tags.get("rua", "").split(",")
        )


def is_dmarc_record(text: str) -> bool:
    """RFC 7489 §6.4: the record starts with the ``v=DMARC1`` tag."""
    first = text.split(";", 1)[0].replace(" ", "").replace("\t", "")
    return first.lower() == "v=dmarc1"


def parse_dmarc(text: str) -> DmarcRecord:
    tags: dict[str, str] = {}
    for part in text.split(";"):
        name, sep, value = part.partition("=")
        if sep and name.strip():
            tags.setdefault(name.strip().lower(), value.strip())
    return DmarcRecord(text=text, tags=tags)


def dmarc_findings(
    domain: str,
    records: Sequence[str],
    organisational: tuple[str, Sequence[str]] | None = None,
) -> list[Finding]:
    """Judge the TXT records at ``_dmarc.<domain>``.

    ``organisational`` is (name, TXT records of ``_dmarc.<name>``) for the
    domain whose policy receivers fall back to when ``domain`` has none
    (RFC 7489 §6.6.3); vigie takes the zone apex as that domain.
    """
    own = [record for record in records if is_dmarc_record(record)]
    if own:
        return _judge_dmarc(domain, own, f"_dmarc.{domain}", subdomain=False)
    if organisational is not None:
        parent, parent_records = organisational
        inherited = [record for record in parent_records if is_dmarc_record(record)]
        if len(inherited) == 1:
            return _judge_dmarc(domain, inherited, f"_dmarc.{parent}", subdomain=True)
    return [_dmarc_missing(domain, f"no DMARC record at _dmarc.{domain}", [])]


def _judge_dmarc(domain: str, texts: list[str], where: str, *, subdomain: bool) -> list[Finding]:
    if len(texts) > 1:
        reason = f"{len(texts)} DMARC records at {where}: receivers apply none (RFC 7489 §6.6.3)"
        return [_dmarc_missing(domain, reason, texts)]
    record = parse_dmarc(texts[0])
    policy = record.subdomain_policy if subdomain else record.policy
    evidence: dict[str, object] = {"record": _clip(record.text), "source": where}
    if subdomain:
        evidence["inherited"] = True
    if "pct" in record.tags:
        evidence["pct"] = _clip(record.tags["pct"])
    if policy is None:
        if not record.has_report_address:
            return [
                _dmarc_missing(domain, f"the DMARC record at {where} has no valid p= tag", texts)
            ]
        evidence["reason"] = (
            "no valid p= tag; with a rua= address receivers act as p=none (RFC 7489 §6.6.3)"
        )
        return [Finding(check_id="dns.dmarc.policy_none", domain=domain, evidence=evidence)]
    evidence["policy"] = policy
    if policy == "none":
        evidence["reason"] = "p=none: receivers deliver mail that fails DMARC as usual"
        return [Finding(check_id="dns.dmarc.policy_none", domain=domain, evidence=evidence)]
    return []


def _dmarc_missing(domain: str, reason: str, records: Sequence[str]) -> Finding:
    evidence = {"reason": reason, "records": [_clip(r) for r in records]}
    return Finding(check_id="dns.dmarc.missing", domain=domain, evidence=evidence)
