"""Mail-domain DNS records and the MTA-STS policy: text -> typed values (pure).

- MX and null MX (RFC 5321 §5.1, RFC 7505 §3);
- MTA-STS TXT record (RFC 8461 §3.1) and policy file (RFC 8461 §3.2), MX
  patterns (RFC 8461 §4.1);
- TLS-RPT record (RFC 8460 §3);
- TLSA records and how they match a certificate chain (RFC 6698 §2.1,
  RFC 7671 §5, RFC 7672 §3.1).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from vigie.parsing import ascii_int, is_ascii_digits
from vigie.scanner.tls import issued_by

# --- MX ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MxRecord:
    preference: int
    host: str  # lower case, no trailing dot; "" for the null MX's "."


def parse_mx(records: Iterable[str]) -> list[MxRecord]:
    """MX records in presentation form (``10 mail.example.ml.``), by preference then name."""
    parsed = []
    for record in records:
        parts = record.split()
        preference = ascii_int(parts[0], max_digits=5) if len(parts) == 2 else None
        if preference is None:
            continue
        parsed.append(MxRecord(preference, parts[1].lower().rstrip(".")))
    return sorted(parsed, key=lambda mx: (mx.preference, mx.host))


def is_null_mx(records: Sequence[MxRecord]) -> bool:
    """RFC 7505 §3: exactly one MX record, preference 0, exchange ``.`` (the root)."""
    return len(records) == 1 and records[0].preference == 0 and records[0].host == ""


def mail_hosts(records: Sequence[MxRecord]) -> list[str]:
    """The distinct exchanges, best preference first (a stray null MX among others is ignored)."""
    return list(dict.fromkeys(mx.host for mx in records if mx.host))


# --- SPF: "this domain sends no mail" --------------------------------------------------------


class SpfStance(str, Enum):
    """What a domain's SPF record says about the mail it sends (RFC 7208 §4.6-§5)."""

    NONE = "none"  # no SPF record (or several: a permerror, RFC 7208 §4.5)
    SENDS_NONE = "sends_none"  # "v=spf1 -all": no one may send, and receivers reject
    AUTHORISES_NONE = "authorises_none"  # only "~all" or "?all": no sender, no rejection
    SENDS = "sends"  # some mechanism (a, mx, ip4, include, redirect...) or "+all"


def spf_stance(txt_records: Iterable[str]) -> SpfStance:
    """Classify the domain's SPF record; ``v=spf1 -all`` is the RFC 7505 §4 companion
    of a null MX (M3AAWG's advice for parked domains)."""
    spf = [r.strip() for r in txt_records if r.strip().lower().split(" ", 1)[0] == "v=spf1"]
    if len(spf) != 1:
        return SpfStance.NONE
    terms = [t.lower() for t in spf[0].split()[1:]]
    if terms == ["-all"]:
        return SpfStance.SENDS_NONE
    if terms in (["~all"], ["?all"], []):
        return SpfStance.AUTHORISES_NONE
    return SpfStance.SENDS


# --- MTA-STS (RFC 8461) ----------------------------------------------------------------------

STS_ID = re.compile(r"[A-Za-z0-9]{1,32}")
STS_MAX_AGE = 31_557_600  # RFC 8461 §3.2: at most one year


@dataclass(frozen=True)
class TxtVerdict:
    """The one record a sender would use, or why there is none."""

    record: str | None
    problem: str = ""  # why the published records do not make one usable record


def select_sts_record(records: Iterable[str]) -> TxtVerdict:
    """RFC 8461 §3.1: keep the records starting ``v=STSv1;``; exactly one, with a valid ``id``."""
    candidates = [r for r in records if r.startswith("v=STSv1")]
    if not candidates:
        return TxtVerdict(None, "no record starting with v=STSv1")
    if len(candidates) > 1:
        return TxtVerdict(None, f"{len(candidates)} v=STSv1 records (senders ignore them all)")
    record = candidates[0]
    fields = _tag_list(record)
    if fields is None or fields[0] != ("v", "STSv1"):
        return TxtVerdict(None, "malformed record (RFC 8461 §3.1 grammar)")
    ids = [value for key, value in fields if key == "id"]
    if len(ids) != 1 or not STS_ID.fullmatch(ids[0]):
        return TxtVerdict(None, "missing or malformed id= (1 to 32 letters or digits)")
    return TxtVerdict(record)


def _tag_list(record: str) -> list[tuple[str, str]] | None:
    """``v=STSv1; id=123;`` -> [("v", "STSv1"), ("id", "123")], None when malformed."""
    fields = []
    for part in record.split(";"):
        part = part.strip(" \t")
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not key.strip() or not value.strip():
            return None
        fields.append((key.strip(), value.strip()))
    return fields or None


@dataclass(frozen=True)
class StsPolicy:
    """An MTA-STS policy file (RFC 8461 §3.2) and what is wrong with it."""

    version: str | None = None
    mode: str | None = None
    max_age: int | None = None
    mx: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()

    @property
    def valid(self) -> bool:
        return not self.errors


def parse_sts_policy(text: str) -> StsPolicy:
    """RFC 8461 §3.2: ``key: value`` lines; ``version: STSv1``, ``mode``, ``max_age`` and,
    unless the mode is ``none``, at least one ``mx``. Unknown keys are ignored; for a
    repeated key other than ``mx`` the first one counts."""
    values: dict[str, str] = {}
    mx: list[str] = []
    errors: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        line = raw.strip()
        if not line:
            continue
        key, colon, value = line.partition(":")
        if not colon:
            errors.append(f"line without 'key: value': {line[:80]!r}")
            continue
        key, value = key.strip(), value.strip()
        if key == "mx":
            mx.append(value.lower().rstrip("."))
        else:
            values.setdefault(key, value)
    version, mode, age_text = values.get("version"), values.get("mode"), values.get("max_age")
    if version != "STSv1":
        errors.append(f"version is {version!r}, not 'STSv1'")
    if mode not in ("enforce", "testing", "none"):
        errors.append(f"mode is {mode!r}, not enforce, testing or none")
    max_age = ascii_int(age_text or "", max_digits=10)
    if max_age is None or max_age > STS_MAX_AGE:
        errors.append(f"max_age is {age_text!r}, not an integer of 0 to {STS_MAX_AGE} seconds")
        max_age = None
    if mode in ("enforce", "testing") and not mx:
        errors.append("no mx: line (required unless mode is none)")
    return StsPolicy(version, mode, max_age, tuple(mx), tuple(errors))


def mx_pattern_matches(pattern: str, host: str) -> bool:
    """RFC 8461 §4.1: a pattern is a host name, or ``*.`` followed by a domain that matches
    exactly one more left-most label (``*.example.ml`` covers ``mx.example.ml``, neither
    ``example.ml`` nor ``a.b.example.ml``)."""
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        label, dot, rest = host.partition(".")
        return bool(label) and bool(dot) and rest == pattern[2:]
    return pattern == host


def unlisted_hosts(policy: StsPolicy, hosts: Iterable[str]) -> list[str]:
    """The MX hosts no ``mx`` pattern of the policy matches (RFC 8461 §4.1)."""
    return [h for h in hosts if not any(mx_pattern_matches(p, h) for p in policy.mx)]


# --- TLS-RPT (RFC 8460) ---------------------------------------------------------------------

RUA_SCHEMES = ("mailto:", "https:")


def select_tlsrpt_record(records: Iterable[str]) -> TxtVerdict:
    """RFC 8460 §3: the records starting ``v=TLSRPTv1``; exactly one, with a ``rua`` of
    ``mailto:`` or ``https:`` URIs (comma-separated)."""
    candidates = [r for r in records if r.startswith("v=TLSRPTv1")]
    if not candidates:
        return TxtVerdict(None, "no record starting with v=TLSRPTv1")
    if len(candidates) > 1:
        return TxtVerdict(None, f"{len(candidates)} v=TLSRPTv1 records (reporters ignore them)")
    fields = _tag_list(candidates[0])
    if fields is None or fields[0] != ("v", "TLSRPTv1"):
        return TxtVerdict(None, "malformed record (RFC 8460 §3 grammar)")
    rua = [value for key, value in fields if key == "rua"]
    uris = [uri.strip() for uri in rua[0].split(",")] if len(rua) == 1 else []
    if not uris or not all(uri.lower().startswith(RUA_SCHEMES) for uri in uris):
        return TxtVerdict(None, "missing or malformed rua= (mailto: or https: URIs)")
    return TxtVerdict(candidates[0])


# --- TLSA (RFC 6698, RFC 7671, RFC 7672) -------------------------------------------------------

DANE_TA, DANE_EE = 2, 3
USAGE_NAMES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}


@dataclass(frozen=True)
class Tlsa:
    """One TLSA record: certificate usage, selector, matching type, association data."""

    usage: int
    selector: int
    matching: int
    data: bytes

    @classmethod
    def parse(cls, text: str) -> Tlsa | None:
        """Presentation form, ``3 1 1 0b9fa5a59e...`` (RFC 6698 §2.2); None when malformed."""
        parts = text.split()
        if len(parts) < 4 or not all(is_ascii_digits(p) and len(p) <= 3 for p in parts[:3]):
            return None
        try:
            data = bytes.fromhex("".join(parts[3:]))
        except ValueError:
            return None
        return cls(int(parts[0]), int(parts[1]), int(parts[2]), data)

    @property
    def usable(self) -> bool:
        """RFC 7672 §3.1.3 and §3.1: SMTP uses only DANE-TA(2) and DANE-EE(3), with
        selector 0/1 and matching type 0/1/2 (RFC 6698 §2.1.2-§2.1.3)."""
        return (
            self.usage in (DANE_TA, DANE_EE)
            and self.selector in (0, 1)
            and self.matching in (0, 1, 2)
        )

    @property
    def text(self) -> str:
        return f"{self.usage} {self.selector} {self.matching} {self.data.hex()}"


def _selected(cert: x509.Certificate, selector: int) -> bytes:
    """RFC 6698 §2.1.2: 0 the whole certificate (DER), 1 its SubjectPublicKeyInfo (DER)."""
    if selector == 0:
        return cert.public_bytes(Encoding.DER)
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def association(cert: x509.Certificate, selector: int, matching: int) -> bytes:
    """The association data a TLSA record with this selector and matching type would hold
    for ``cert`` (RFC 6698 §2.1.3: 0 exact, 1 SHA-256, 2 SHA-512)."""
    selected = _selected(cert, selector)
    if matching == 1:
        return hashlib.sha256(selected).digest()
    if matching == 2:
        return hashlib.sha512(selected).digest()
    return selected


def tlsa_matches(record: Tlsa, chain: Sequence[x509.Certificate]) -> bool:
    """Does ``record`` authenticate the chain a server sent (leaf first)?

    DANE-EE(3) matches the leaf only, whatever its names and dates (RFC 7672
    §3.1.1); DANE-TA(2) matches a certificate of the chain above the leaf, a
    trust anchor the server must send (RFC 7671 §5.2.2, RFC 7672 §3.1.2).
    """
    if not record.usable or not chain:
        return False
    candidates = chain[:1] if record.usage == DANE_EE else chain[1:]
    if any(
        association(cert, record.selector, record.matching) == record.data for cert in candidates
    ):
        return True
    # A DANE-TA record with the full certificate or key carries the trust anchor itself:
    # the server may then omit it, and the chain must be signed by it (RFC 7671 §5.2.2).
    return record.usage == DANE_TA and record.matching == 0 and _signed_by_anchor(record, chain)


def _signed_by_anchor(record: Tlsa, chain: Sequence[x509.Certificate]) -> bool:
    try:
        if record.selector == 0:
            anchor = x509.load_der_x509_certificate(record.data)
            return any(issued_by(cert, anchor) for cert in chain)
        key = load_der_public_key(record.data)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return any(_signature_verifies(cert, key) for cert in chain)


def _signature_verifies(cert: x509.Certificate, key: object) -> bool:
    """``cert``'s signature checks out with the public ``key`` (RSA PKCS#1 v1.5 or ECDSA)."""
    algorithm = cert.signature_hash_algorithm
    if algorithm is None:
        return False
    try:
        if isinstance(key, rsa.RSAPublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), algorithm)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(algorithm))
        else:
            return False
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


@dataclass(frozen=True)
class DaneVerdict:
    """How the TLSA records of one MX host judge the chains it served."""

    records: tuple[Tlsa, ...]
    unmatched_chains: tuple[tuple[x509.Certificate, ...], ...] = field(default=())

    @property
    def usable(self) -> tuple[Tlsa, ...]:
        return tuple(r for r in self.records if r.usable)


def judge_dane(
    records: Sequence[Tlsa], chains: Sequence[Sequence[x509.Certificate]]
) -> DaneVerdict:
    """RFC 7672 §2.2 and §3: with usable records, every chain the server may present must
    match at least one of them, or a validating sender defers the mail."""
    usable = [r for r in records if r.usable]
    unmatched = tuple(
        tuple(chain)
        for chain in chains
        if usable and not any(tlsa_matches(r, chain) for r in usable)
    )
    return DaneVerdict(tuple(records), unmatched)
