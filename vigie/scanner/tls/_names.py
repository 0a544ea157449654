"""Does a certificate cover a host name? RFC 9525 §6 (RFC 6125 §6.4), IDNA 2008, the PSL.

- Reference identifiers (the name vigie scanned) are compared in their
  A-label form: IDNA 2008 (RFC 5891 §4, with the UTS #46 mapping,
  non-transitional, as browsers do), so ``faß.de`` is ``xn--fa-hia.de`` and
  never ``fass.de`` (the IDNA 2003 reading of Python's ``idna`` codec).
- Presented identifiers: the subjectAltName dNSName and iPAddress entries
  only, never the subject's CN: RFC 9525 (which obsoletes RFC 6125 and its
  §6.4.4 CN fallback) drops the CN-ID, and RFC 9110 §4.3.4 says "a reference
  identity of type CN-ID MUST NOT be used by clients"; browsers refuse such
  certificates (badssl.com's no-san). Comparison is case-insensitive
  (RFC 6125 §6.4.1, RFC 4343).
- Wildcards (RFC 6125 §6.4.3): only a whole left-most label ``*``, covering
  exactly one label, never over a public suffix (CA/B Forum BR §3.2.2.6:
  ``*.co.uk``, ``*.gouv.ml`` match nothing; ICANN section of the Public
  Suffix List, so that ``*.github.io``-style private-section wildcards that
  browsers accept still match), and never ``*.tld``.

Every function takes untrusted text (names from DNS, from certificates) and
never raises: a name that cannot be read matches nothing.
"""

from __future__ import annotations

import functools
import ipaddress

import idna
from cryptography import x509
from publicsuffixlist import PublicSuffixList

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@functools.cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList(only_icann=True)


def to_ace(name: str) -> str | None:
    """``name`` as lower-case A-labels without the root dot (RFC 5891 §4); None if invalid.

    ASCII names are only lower-cased (LDH names, A-labels and the underscores
    some operators use all pass as they are); names with other characters go
    through IDNA 2008 with the UTS #46 mapping (``idna`` package).
    """
    if not isinstance(name, str):
        return None
    if name.endswith("."):
        name = name[:-1]
    if not name or len(name) > 1024:
        return None
    if name.isascii():
        return name.lower()
    try:
        return idna.encode(name, uts46=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError, ValueError):
        return None


def is_public_suffix(name: str) -> bool:
    """Is ``name`` (A-labels) a public suffix of the ICANN section of the PSL, or a bare TLD?"""
    if "." not in name:
        return True
    try:
        return bool(_public_suffixes().is_public(name))
    except (ValueError, TypeError, UnicodeError):
        return True  # unreadable: as if public, so no wildcard is granted over it


def wildcard_matches(pattern: str, hostname: str) -> bool:
    """RFC 6125 §6.4.3 with CA/B BR §3.2.2.6: ``*.base`` covers ``label.base``, one label.

    Both in A-label form. No partial-label wildcards (``f*.example.com``), no
    wildcard in any other position, no wildcard over a public suffix.
    """
    if not pattern.startswith("*."):
        return False
    base = pattern[2:]
    if not base or "*" in base or base.startswith("."):
        return False
    head, dot, rest = hostname.partition(".")
    if not dot or not head or head == "*" or rest != base:
        return False
    return not is_public_suffix(base)


def name_matches(pattern: str, hostname: str) -> bool:
    """Does one presented DNS identifier ``pattern`` cover ``hostname`` (RFC 6125 §6.4.1, §6.4.3)?"""
    host = to_ace(hostname)
    if host is None:
        return False
    if pattern.startswith("*."):
        base = to_ace(pattern[2:])
        return base is not None and wildcard_matches("*." + base, host)
    presented = to_ace(pattern)
    return presented is not None and "*" not in presented and presented == host


def dns_names(cert: x509.Certificate) -> list[str]:
    """The subjectAltName dNSName entries (lower case, no root dot)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [name.lower().rstrip(".") for name in san.get_values_for_type(x509.DNSName)]


def ip_names(cert: x509.Certificate) -> list[IpAddress]:
    """The subjectAltName iPAddress entries that are single addresses."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [ip for ip in san.get_values_for_type(x509.IPAddress) if isinstance(ip, IpAddress)]


def covers_hostname(cert: x509.Certificate, hostname: str) -> bool:
    """Does ``cert`` cover ``hostname`` (a DNS name or an IP literal)? RFC 6125 §6.4.

    IP literals match iPAddress entries only (RFC 6125 §1.7.2, RFC 5280
    §4.2.1.6). DNS names match the dNSName entries only: the subject CN never
    counts (RFC 9110 §4.3.4, RFC 9525; see the module docstring).
    """
    if not isinstance(hostname, str):
        return False
    try:
        address = ipaddress.ip_address(hostname.strip("[]"))
    except ValueError:
        address = None
    if address is not None:
        return address in ip_names(cert)
    return any(name_matches(pattern, hostname) for pattern in dns_names(cert))
