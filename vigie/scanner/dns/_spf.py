"""SPF (RFC 7208): parsing a record, evaluating the whole include/redirect tree.

Check IDs: ``dns.spf.missing``, ``dns.spf.permissive``, ``dns.spf.invalid``.

Parsing (``parse_spf``) is pure: a record's syntax (RFC 7208 §4.6.1, §5,
§6, §7.1) is judged without I/O. Evaluation (``evaluate_spf``) is
``check_host()`` (§4) through an injected lookup function, so the same code
runs against the configured resolvers and against the standard's example
zones. Without a client address it evaluates for a *stranger*: a sender that
no ``ip4``/``ip6``/``a``/``mx``/``ptr`` term lists. That is the path that
visits every term, so it meets the processing limits (§4.6.4) whenever any
sender could, and its result says what the domain tells receivers about
anybody: ``pass`` means any server may send as the domain.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from vigie.errors import VigieError
from vigie.model import Finding
from vigie.scanner.lookups import clip
from vigie.scanner.resolve import Answer, Lookup

MAX_SPF_LOOKUPS = 10  # RFC 7208 §4.6.4: more DNS-querying terms is a permerror
MAX_VOID_LOOKUPS = 2  # RFC 7208 §4.6.4: more lookups answering nothing is a permerror
MAX_MX_NAMES = 10  # RFC 7208 §4.6.4: an "mx" term with more MX names is a permerror
MAX_QUERIES = 40  # vigie's own cap on the DNS queries of one evaluation
MAX_DOMAIN = 253  # RFC 7208 §7.3: longer expansions lose labels on the left

QUALIFIERS = "+-~?"
RESULTS = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}
# Mechanisms and whether their argument is required / optional / absent (RFC 7208 §5).
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
_CIDR = re.compile(r"^(?P<spec>.*?)(?:/(?P<v4>[0-9]+))?(?://(?P<v6>[0-9]+))?$", re.ASCII)
_MACRO = re.compile(
    r"%(?:\{(?P<letter>[A-Za-z])(?P<digits>[0-9]*)(?P<r>[rR]?)(?P<delims>[-.+,/_=]*)\}|(?P<esc>[%_-]))|(?P<bad>%)",
    re.ASCII,
)
_MACRO_LETTERS = frozenset("slodiphv")  # "c", "r", "t": only in explanations (§7.2)
_TOPLABEL = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$", re.ASCII)


# --- parsing ------------------------------------------------------------------------


@dataclass(frozen=True)
class Directive:
    """One mechanism with its qualifier (RFC 7208 §4.6.2); ``argument`` keeps ``:`` and ``/`` parts."""

    qualifier: str
    mechanism: str
    domain_spec: str | None  # the part after ':' (None: the current domain)
    v4_prefix: int | None = None
    v6_prefix: int | None = None
    text: str = ""


@dataclass(frozen=True)
class SpfPolicy:
    """What one ``v=spf1`` record says, and what is wrong with its syntax."""

    text: str
    all_qualifier: str | None  # "+", "-", "~" or "?" of the ``all`` term; None without one
    redirect: str | None  # the redirect target, when it applies (no ``all`` term)
    errors: tuple[str, ...]  # any of these makes the record a permerror (§4.6)
    warnings: tuple[str, ...]
    directives: tuple[Directive, ...] = ()
    lookups: int = 0  # DNS-querying terms of this record alone (§4.6.4)


def is_spf_record(text: str) -> bool:
    """RFC 7208 §4.5: the version tag ``v=spf1``, then a space or nothing (case-insensitive)."""
    return text[:6].lower() == "v=spf1" and (len(text) == 6 or text[6] == " ")


def select_spf(records: Sequence[str]) -> list[str]:
    """The SPF records among a name's TXT records (§4.5)."""
    return [record for record in records if is_spf_record(record)]


def parse_spf(text: str) -> SpfPolicy:
    """Parse one ``v=spf1`` record (RFC 7208 §4.6.1 grammar, §5 mechanisms, §6 modifiers).

    Any syntax error makes the whole record a permerror (§4.6): the errors
    are listed, never raised.
    """
    errors: list[str] = []
    warnings: list[str] = []
    all_qualifier: str | None = None
    redirects: list[str] = []
    explanations = 0
    lookups = 0
    directives: list[Directive] = []
    for term in text.split(" ")[1:]:
        if not term:
            continue
        if not term.isascii() or not term.isprintable():
            errors.append(f"'{clip(term)}' has characters outside printable ASCII")
            continue
        if _is_modifier(term):
            name, _, value = term.partition("=")
            problem = _modifier_problem(name, value)
            if problem:
                errors.append(problem)
            if name.lower() == "redirect":
                redirects.append(value)
                lookups += 1
            elif name.lower() == "exp":
                explanations += 1
            continue
        if all_qualifier is not None:
            warnings.append(f"'{clip(term)}' after 'all' is never evaluated")
        directive, problem = _directive(term)
        if directive is None:
            errors.append(problem)
            continue
        directives.append(directive)
        if directive.mechanism in _LOOKUP_TERMS:
            lookups += 1
        if directive.mechanism == "ptr":
            warnings.append("'ptr' is deprecated (RFC 7208 §5.5) and slow for receivers")
        if directive.mechanism == "all" and all_qualifier is None:
            all_qualifier = directive.qualifier
    if len(redirects) > 1:
        errors.append("more than one 'redirect=' modifier (RFC 7208 §6)")
    if explanations > 1:
        errors.append("more than one 'exp=' modifier (RFC 7208 §6)")
    if all_qualifier is not None and redirects:
        warnings.append("'redirect=' is ignored because the record has an 'all' term (§6.1)")
    return SpfPolicy(
        text=text,
        all_qualifier=all_qualifier,
        redirect=redirects[0] if len(redirects) == 1 and all_qualifier is None else None,
        errors=tuple(errors),
        warnings=tuple(warnings),
        directives=tuple(directives),
        lookups=lookups,
    )


def _is_modifier(term: str) -> bool:
    name, sep, _ = term.partition("=")
    return bool(sep) and ":" not in name and "/" not in name


def _modifier_problem(name: str, value: str) -> str:
    if not _MODIFIER_NAME.match(name):
        return f"'{clip(name)}=' is not a valid modifier name"
    if name.lower() in ("redirect", "exp"):
        if not value:
            return f"'{clip(name)}=' without a domain"
        return _domain_spec_problem(value, f"{name}={value}")
    return macro_problem(value, f"{name}={value}")


def _directive(term: str) -> tuple[Directive | None, str]:
    qualifier = "+"
    body = term
    if body[0] in QUALIFIERS:
        qualifier, body = body[0], body[1:]
    name_end = len(body)
    for index, char in enumerate(body):
        if char in ":/":
            name_end = index
            break
    mechanism, rest = body[:name_end].lower(), body[name_end:]
    kind = _MECHANISMS.get(mechanism)
    if kind is None:
        return None, f"unknown mechanism '{clip(term)}'"
    if mechanism == "all":
        if rest:
            return None, f"'{clip(term)}': 'all' takes no argument"
        return Directive(qualifier, "all", None, text=term), ""
    if mechanism in ("ip4", "ip6"):
        return _network_directive(qualifier, mechanism, rest, term)
    spec: str | None = None
    v4: int | None = None
    v6: int | None = None
    if mechanism in ("a", "mx"):
        match = _CIDR.match(rest)
        if match is None:  # pragma: no cover - the pattern matches any text
            return None, f"'{clip(term)}' has a malformed prefix length"
        spec_part = match.group("spec")
        v4 = _prefix(match.group("v4"))
        v6 = _prefix(match.group("v6"))
        if (v4 is not None and v4 > 32) or (v6 is not None and v6 > 128):
            return None, f"'{clip(term)}' has a prefix length out of range"
    else:
        spec_part = rest
    if spec_part:
        if not spec_part.startswith(":"):
            return None, f"'{clip(term)}' is malformed"
        spec = spec_part[1:]
        problem = _domain_spec_problem(spec, term)
        if problem:
            return None, problem
    elif kind == "required":
        return None, f"'{clip(term)}': '{mechanism}' needs a domain"
    return Directive(qualifier, mechanism, spec, v4, v6, term), ""


def _prefix(digits: str | None) -> int | None:
    """RFC 7208 §5.6 ABNF: "0" or a number without a leading zero; anything else is out of range."""
    if digits is None:
        return None
    if len(digits) > 3 or (len(digits) > 1 and digits[0] == "0"):
        return 1000
    return int(digits)


def _network_directive(
    qualifier: str, mechanism: str, rest: str, term: str
) -> tuple[Directive | None, str]:
    version = 4 if mechanism == "ip4" else 6
    argument = rest[1:] if rest.startswith(":") else ""
    address, slash, length = argument.partition("/")
    bad = f"'{clip(term)}' is not a valid IPv{version} network"
    if not address or (slash and not (length.isascii() and length.isdigit())) or len(length) > 3:
        return None, bad
    if slash and len(length) > 1 and length[0] == "0":
        return None, bad
    try:
        network = ipaddress.ip_network(argument, strict=False)
    except ValueError:
        return None, bad
    if network.version != version:
        return None, bad
    return Directive(qualifier, mechanism, argument, text=term), ""


def macro_problem(text: str, term: str) -> str:
    """Why ``text`` is not a valid macro-string (RFC 7208 §7.1), "" when it is."""
    for match in _MACRO.finditer(text):
        if match.group("bad") is not None:
            return f"'{clip(term)}': '%' must start a macro (%{{x}}, %%, %_ or %-)"
        letter = match.group("letter")
        if letter is not None:
            if letter.lower() not in _MACRO_LETTERS:
                return f"'{clip(term)}': unknown macro letter '{letter}'"
            if match.group("digits") and int(match.group("digits")[:4]) == 0:
                return f"'{clip(term)}': a macro transformer of 0 labels"
    return ""


def _domain_spec_problem(spec: str, term: str) -> str:
    """RFC 7208 §7.1: domain-spec = macro-string domain-end."""
    problem = macro_problem(spec, term)
    if problem:
        return problem
    if spec.endswith("}") and "%{" in spec:
        return ""  # domain-end is a macro-expand
    last = spec.rstrip(".").rsplit(".", 1)
    if len(last) < 2 or not _TOPLABEL.match(last[1]):
        return f"'{clip(term)}': '{clip(spec)}' does not end in a top-level label"
    return ""


# --- macros (§7) --------------------------------------------------------------------


@dataclass(frozen=True)
class Sender:
    """What a receiver knows when it runs check_host() (RFC 7208 §4.1).

    ``ip`` None is the stranger: the macros that depend on the client are
    then unknown, and the terms that match addresses never match.
    """

    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    sender: str = ""  # "local@domain"; empty: postmaster@<domain> (§4.3)
    helo: str = ""


class _Unknown(VigieError):
    """A macro only a receiver can expand (the client's address, HELO name...)."""


def expand_macros(text: str, domain: str, who: Sender, ptr: str | None = None) -> str:
    """Expand a macro-string (RFC 7208 §7.3, §7.4); raises ``_Unknown`` for unknowable letters.

    ``ptr`` is the validated name of the client (§7.3 "p"), found beforehand.
    """
    sender = who.sender or f"postmaster@{domain}"
    local, _, sender_domain = sender.rpartition("@")

    def value(letter: str) -> str:
        if letter == "d":
            return domain
        if letter == "s":
            return sender
        if letter == "l":
            return local or "postmaster"
        if letter == "o":
            return sender_domain
        if letter == "h" and who.helo:
            return who.helo
        if who.ip is None:
            raise _Unknown(letter)
        if letter == "i":
            if who.ip.version == 4:
                return str(who.ip)
            return ".".join(who.ip.exploded.replace(":", ""))
        if letter == "v":
            return "in-addr" if who.ip.version == 4 else "ip6"
        if letter == "p" and ptr is not None:
            return ptr
        raise _Unknown(letter)

    def replace(match: re.Match[str]) -> str:
        esc = match.group("esc")
        if esc is not None:
            return {"%": "%", "_": " ", "-": "%20"}[esc]
        letter = match.group("letter")
        if letter is None:
            return "%"
        parts = re.split("[" + re.escape(match.group("delims") or ".") + "]", value(letter.lower()))
        if match.group("r"):
            parts.reverse()
        digits = match.group("digits")
        if digits:
            parts = parts[-min(int(digits[:4]), len(parts)) :]
        expanded = ".".join(parts)
        if letter.isupper():
            expanded = urllib.parse.quote(expanded, safe="")
        return expanded

    result = _MACRO.sub(replace, text)
    while len(result) > MAX_DOMAIN and "." in result:
        result = result.split(".", 1)[1]
    return result


# --- evaluation (check_host, §4) ----------------------------------------------------

LookupFunction = Callable[[str, str], Awaitable[Lookup]]


@dataclass
class SpfEvaluation:
    """The outcome of check_host() for one domain, and the path that led to it."""

    domain: str
    result: str  # pass fail softfail neutral none permerror temperror, or "unknown"
    reason: str = ""
    records: list[str] = field(default_factory=list)  # "<domain>: <record>" visited
    lookups: int = 0
    void_lookups: int = 0
    queries: int = 0
    warnings: list[str] = field(default_factory=list)
    failure: Lookup | None = None  # the lookup behind a temperror
    top_record: str | None = None


class _Stop(VigieError):
    def __init__(self, result: str, reason: str, failure: Lookup | None = None) -> None:
        super().__init__(reason)
        self.result = result
        self.reason = reason
        self.failure = failure


def valid_domain(name: str) -> bool:
    """RFC 7208 §4.3: labels of 1 to 63 characters, at least two of them, 253 in all."""
    labels = name.rstrip(".").split(".")
    return (
        len(labels) > 1
        and len(name.rstrip(".")) <= MAX_DOMAIN
        and all(0 < len(label) <= 63 for label in labels)
    )


def _reverse_name(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return ip.reverse_pointer


class _Evaluator:
    def __init__(self, lookup: LookupFunction, who: Sender) -> None:
        self.lookup = lookup
        self.who = who
        self.state = SpfEvaluation(domain="", result="unknown")
        self._ptr_names: list[str] | None = None

    async def query(self, name: str, rdtype: str, *, term: bool, tolerant: bool = False) -> Lookup:
        """One lookup; a failure is a temperror (§4.4) unless ``tolerant`` (PTR, §5.5)."""
        if self.state.queries >= MAX_QUERIES:
            raise _Stop("unknown", f"vigie stopped after {MAX_QUERIES} DNS queries")
        self.state.queries += 1
        found = await self.lookup(name, rdtype)
        if found.failed:
            if tolerant:
                return found
            raise _Stop("temperror", f"{name} {rdtype}: {found.detail}", found)
        if term and (found.outcome in (Answer.NXDOMAIN, Answer.NODATA) or not found.records):
            self.state.void_lookups += 1
            if self.state.void_lookups > MAX_VOID_LOOKUPS:
                raise _Stop(
                    "permerror",
                    f"more than {MAX_VOID_LOOKUPS} lookups answered nothing ({name} {rdtype} "
                    "was one): receivers give up (RFC 7208 §4.6.4)",
                )
        return found

    def count(self, term: str) -> None:
        self.state.lookups += 1
        if self.state.lookups > MAX_SPF_LOOKUPS:
            raise _Stop(
                "permerror",
                f"more than {MAX_SPF_LOOKUPS} DNS-querying terms across the include/redirect "
                f"tree ('{clip(term)}' is number {self.state.lookups}): receivers give up "
                "(RFC 7208 §4.6.4)",
            )

    async def validated_names(self) -> list[str]:
        """RFC 7208 §5.5: the client's PTR names whose addresses include the client (10 at most)."""
        if self._ptr_names is not None:
            return self._ptr_names
        ip = self.who.ip
        names: list[str] = []
        if ip is not None:
            ptr = await self.query(_reverse_name(ip), "PTR", term=True, tolerant=True)
            rdtype = "A" if ip.version == 4 else "AAAA"
            for record in ptr.records[:MAX_MX_NAMES]:
                host = record.rstrip(".").lower()
                if not valid_domain(host):
                    continue
                found = await self.query(host, rdtype, term=False, tolerant=True)
                if any(_same_address(r, ip) for r in found.records):
                    names.append(host)
        self._ptr_names = names
        return names

    async def target(self, spec: str | None, domain: str) -> str | None:
        """The domain a term names, macros expanded (§7); None when only a receiver knows it."""
        if spec is None:
            return domain
        ptr: str | None = None
        if re.search(r"%\{[pP]", spec) and self.who.ip is not None:
            names = await self.validated_names()
            ptr = _preferred(names, domain) or "unknown"
        try:
            return expand_macros(spec, domain, self.who, ptr).rstrip(".").lower()
        except _Unknown:
            return None

    async def check_host(self, domain: str, depth: int) -> tuple[str, str]:
        """RFC 7208 §4: the result for ``domain`` and the reason."""
        if not valid_domain(domain):
            if depth == 0:
                return "none", f"'{clip(domain)}' is not a valid domain name (RFC 7208 §4.3)"
            raise _Stop("permerror", f"'{clip(domain)}' is not a valid domain name")
        txt = await self.query(domain, "TXT", term=depth > 0)
        records = select_spf(txt.records)
        if depth == 0:
            self.state.top_record = records[0] if len(records) == 1 else None
        for record in records:
            self.state.records.append(f"{domain}: {clip(record)}")
        if not records:
            return "none", f"{domain} has no SPF record"
        if len(records) > 1:
            raise _Stop(
                "permerror", f"{domain} publishes {len(records)} SPF records (RFC 7208 §4.5)"
            )
        policy = parse_spf(records[0])
        self.state.warnings.extend(policy.warnings)
        if policy.errors:
            raise _Stop("permerror", f"syntax error in the record of {domain}: {policy.errors[0]}")
        for directive in policy.directives:
            matched, why = await self.matches(directive, domain, depth)
            if matched:
                result = RESULTS[directive.qualifier]
                return result, f"'{clip(directive.text)}' at {domain}{why}"
        if policy.redirect is not None:
            self.count(f"redirect={policy.redirect}")
            target = await self.target(policy.redirect, domain)
            if target is None:
                raise _Stop(
                    "unknown", f"'redirect={clip(policy.redirect)}' needs the sender's data"
                )
            result, reason = await self.check_host(target, depth + 1)
            if result == "none":
                raise _Stop(
                    "permerror",
                    f"'redirect={target}' leads to no SPF record (RFC 7208 §6.1)",
                )
            return result, reason
        return "neutral", f"no term of {domain} matched and it has no 'all' (RFC 7208 §4.7)"

    async def matches(self, directive: Directive, domain: str, depth: int) -> tuple[bool, str]:
        """Whether one mechanism matches the client (RFC 7208 §5)."""
        mechanism = directive.mechanism
        if mechanism == "all":
            return True, ""
        if mechanism in ("ip4", "ip6"):
            ip = self.who.ip
            if ip is None or directive.domain_spec is None:
                return False, ""
            return ip in ipaddress.ip_network(directive.domain_spec, strict=False), ""
        self.count(directive.text)
        target = await self.target(directive.domain_spec, domain)
        if mechanism == "include":
            return await self.include(directive, target, depth)
        if target is None or not valid_domain(target):
            return False, ""  # a stranger is not in a list keyed by its own data (§4.8)
        if mechanism == "ptr":
            names = await self.validated_names()
            return any(n == target or n.endswith("." + target) for n in names), ""
        if mechanism == "exists":
            found = await self.query(target, "A", term=True)
            return bool(found.records), f" ({target} exists: every sender matches)"
        if mechanism == "a":
            return await self.address_match(target, directive, term=True), ""
        found = await self.query(target, "MX", term=True)  # "mx"
        if len(found.records) > MAX_MX_NAMES:
            raise _Stop("permerror", f"{target} has more than {MAX_MX_NAMES} MX names (§4.6.4)")
        for record in found.records:
            host = record.split()[-1].rstrip(".")
            if host and await self.address_match(host, directive, term=False):
                return True, ""
        return False, ""

    async def include(
        self, directive: Directive, target: str | None, depth: int
    ) -> tuple[bool, str]:
        """RFC 7208 §5.2: pass matches; fail, softfail, neutral do not; none is a permerror."""
        if target is None:
            raise _Stop("unknown", f"'{clip(directive.text)}' needs the sender's data")
        result, reason = await self.check_host(target, depth + 1)
        if result == "none":
            raise _Stop(
                "permerror",
                f"'{clip(directive.text)}': {target} has no SPF record (RFC 7208 §5.2)",
            )
        return result == "pass", f" ({target} gives pass: {reason})" if result == "pass" else ""

    async def address_match(self, host: str, directive: Directive, *, term: bool) -> bool:
        """RFC 7208 §5.3/§5.4: the client is in one of ``host``'s addresses (with the prefix)."""
        ip = self.who.ip
        if ip is None:
            if term:
                await self.query(host, "A", term=True)
            return False
        rdtype, prefix = (
            ("A", directive.v4_prefix) if ip.version == 4 else ("AAAA", directive.v6_prefix)
        )
        found = await self.query(host, rdtype, term=term)
        for record in found.records:
            try:
                network = ipaddress.ip_network(
                    f"{record}/{prefix if prefix is not None else ip.max_prefixlen}", strict=False
                )
            except ValueError:
                continue
            if ip in network:
                return True
        return False


def _same_address(record: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    try:
        return ipaddress.ip_address(record) == ip
    except ValueError:
        return False


def _preferred(names: Sequence[str], domain: str) -> str | None:
    """RFC 7208 §7.3 "p": the domain itself, else one of its subdomains, else any."""
    for name in names:
        if name == domain:
            return name
    for name in names:
        if name.endswith("." + domain):
            return name
    return names[0] if names else None


async def evaluate_spf(
    domain: str, lookup: LookupFunction, who: Sender | None = None
) -> SpfEvaluation:
    """check_host() (RFC 7208 §4) for ``domain``, by default for a stranger.

    The DNS-querying terms (§4.6.4: include, a, mx, ptr, exists, redirect)
    and the void lookups are counted across the whole include/redirect tree;
    past 10 (resp. 2) the result is permerror. A lookup that fails is a
    temperror (§2.6.6), reported as a scan problem, never as a verdict. An
    IPv4-mapped IPv6 client is an IPv4 client (§5).
    """
    sender = who or Sender()
    if isinstance(sender.ip, ipaddress.IPv6Address) and sender.ip.ipv4_mapped is not None:
        sender = Sender(sender.ip.ipv4_mapped, sender.sender, sender.helo)
    evaluator = _Evaluator(lookup, sender)
    name = domain.lower().rstrip(".")
    evaluator.state.domain = name
    try:
        result, reason = await evaluator.check_host(name, 0)
    except _Stop as stop:
        result, reason = stop.result, stop.reason
        evaluator.state.failure = stop.failure
    evaluator.state.result = result
    evaluator.state.reason = reason
    return evaluator.state


# --- findings ---------------------------------------------------------------------------


def spf_findings(evaluation: SpfEvaluation) -> list[Finding]:
    """Judge a mail domain by what check_host() gives a stranger (RFC 7208 §2.6, §4).

    none -> ``dns.spf.missing``; permerror -> ``dns.spf.invalid`` (receivers
    apply none of the policy: syntax §4.6, multiple records §4.5, include
    without record §5.2, limits §4.6.4); pass or neutral for a stranger ->
    ``dns.spf.permissive`` (``+all``, ``?all``, no ``all`` (§4.7), or an
    ``include`` whose target passes everyone). temperror and unknown give no
    verdict (the caller reports the failed lookup).
    """
    domain = evaluation.domain
    evidence: dict[str, object] = {
        "reason": evaluation.reason,
        "records": evaluation.records[:20],
        "result": evaluation.result,
        "dns_lookups": evaluation.lookups,
        "void_lookups": evaluation.void_lookups,
    }
    if evaluation.warnings:
        evidence["warnings"] = [clip(w) for w in evaluation.warnings[:20]]
    result = evaluation.result
    if result == "none":
        evidence["reason"] = "no SPF record (TXT 'v=spf1 ...')"
        return [Finding(check_id="dns.spf.missing", domain=domain, evidence=evidence)]
    if result == "permerror":
        return [Finding(check_id="dns.spf.invalid", domain=domain, evidence=evidence)]
    if result in ("pass", "neutral"):
        evidence["all"] = _top_all(evaluation.top_record)
        if result == "pass":
            evidence["reason"] = f"any server may send mail as {domain}: {evaluation.reason}"
        else:
            evidence["reason"] = (
                f"unlisted senders get 'neutral', which receivers treat as no policy: {evaluation.reason}"
            )
        return [Finding(check_id="dns.spf.permissive", domain=domain, evidence=evidence)]
    return []


def _top_all(record: str | None) -> str | None:
    if record is None:
        return None
    qualifier = parse_spf(record).all_qualifier
    return f"{qualifier}all" if qualifier else None
