"""Every file the configuration names, read and parsed before any packet.

A bad one stops the command (``ConfigError``, exit 2) naming its key, instead of
a ``scan.error`` on every host or a failure at the end of a sweep. It lives here,
above the settings, because judging a file takes the parser of the module that
uses it (grading's policy, the HTTP family's path list): the settings stay the
ground floor.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path

from vigie.config import Settings
from vigie.errors import ConfigError


def check_named_files(settings: Settings) -> None:
    """Read and parse every file the configuration names, now: a bad one stops the
    command (ConfigError, exit 2) naming its key, before any packet is sent, instead of
    a scan.error on every host or a failure at the end of a sweep."""
    problems: list[str] = []

    def check(key: str, path: Path | None, parse: Callable[[Path], object]) -> None:
        if path is None:
            return
        try:
            parse(path)
        except (ConfigError, OSError, ValueError, ssl.SSLError) as exc:
            message = str(exc)
            problems.append(message if message.startswith(key) else f"{key}: {message}")

    check("grading.policy_file", settings.grading.policy_file, _parse_policy_file)
    check("http.paths_file", settings.http.paths_file, _parse_paths_file)
    check("tls.extra_ca_file", settings.tls.extra_ca_file, _parse_ca_file)
    check("smtp.ca_file", settings.smtp.ca_file, _parse_ca_file)
    check("dns.trust_anchors", settings.dns.trust_anchors, _parse_trust_anchors)
    if problems:
        raise ConfigError("invalid configuration: " + "; ".join(problems))


def _parse_policy_file(path: Path) -> object:
    from vigie.grading import load_policies

    return load_policies(path)


def _parse_paths_file(path: Path) -> object:
    # Imported here: a command that names no such file need not load the HTTP family.
    from vigie.scanner.http import load_path_list

    return load_path_list(path)


def _parse_trust_anchors(path: Path) -> object:
    """DS records in presentation format (the DNSSEC chains start from them)."""
    from vigie.scanner.dns import load_trust_anchors

    try:
        return load_trust_anchors(path)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _parse_ca_file(path: Path) -> object:
    """A PEM file of certificates that OpenSSL accepts as trust anchors."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(path))
    except ssl.SSLError as exc:
        raise ConfigError(f"{path}: not a PEM certificate file ({exc.reason or exc})") from None
    if not context.get_ca_certs():
        raise ConfigError(f"{path}: holds no CA certificate")
    return context
