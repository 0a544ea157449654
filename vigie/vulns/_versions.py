"""Version strings compared the way their publishers order them: pure functions.

Upstream versions (``9.2p1``, ``2.4.57``, ``1.1.1w``) and Debian/Ubuntu package
versions (``1:9.2p1-2+deb12u3``) are both ordered with the dpkg algorithm
(Debian Policy §5.6.12), as implemented by ``univers.versions.DebianVersion``:
digits compare as numbers, letters sort after the end of a string (``9.2p1`` is a
release of ``9.2``), ``~`` sorts before it (``3.0~rc1`` before ``3.0``).
Upstream pre-release markers (``3.0.0-rc1``, ``6.5-beta2``) are rewritten with
``~`` first, so that a release candidate sorts before its release.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from univers.versions import DebianVersion, InvalidVersion

from vigie.parsing import is_ascii_digits

_PRERELEASE = re.compile(r"[-_.]?(alpha|beta|rc|pre|dev)[-_.]?(?=\d|$)", re.IGNORECASE)
_NUMBERS = re.compile(r"\d+")
# dpkg accepts alphanumerics and . + - ~ (and : for the epoch).
_NOT_DPKG = re.compile(r"[^A-Za-z0-9.+~]")


@functools.lru_cache(maxsize=8_192)
def _upstream_key(version: str) -> DebianVersion | tuple[int, ...]:
    text = version.strip().lower().lstrip("v")
    text = _PRERELEASE.sub(lambda m: "~" + m.group(1), text)
    text = _NOT_DPKG.sub(".", text)
    if not is_ascii_digits(text[:1]):
        text = "0" + text
    try:
        return DebianVersion(text)
    except (InvalidVersion, ValueError, TypeError):
        return tuple(int(n) for n in _NUMBERS.findall(text))


def compare_upstream(left: str, right: str) -> int:
    """-1, 0 or 1 as upstream version ``left`` is older, the same or newer than ``right``."""
    a, b = _upstream_key(left), _upstream_key(right)
    if type(a) is not type(b):
        a, b = _numbers(left), _numbers(right)
    return (a > b) - (a < b)  # type: ignore[operator]


def _numbers(version: str) -> tuple[int, ...]:
    return tuple(int(n) for n in _NUMBERS.findall(version))


@functools.lru_cache(maxsize=8_192)
def _package_key(version: str) -> DebianVersion | None:
    try:
        return DebianVersion(version.strip())
    except (InvalidVersion, ValueError, TypeError):
        return None


def compare_package(left: str, right: str) -> int | None:
    """dpkg order of two Debian/Ubuntu package versions; None if one is not valid."""
    a, b = _package_key(left), _package_key(right)
    if a is None or b is None:
        return None
    return (a > b) - (a < b)


def upstream_of(package_version: str) -> str:
    """``1:9.2p1-2+deb12u3`` -> ``9.2p1`` (no epoch, no Debian revision)."""
    text = package_version.split(":", 1)[1] if ":" in package_version else package_version
    return text.rsplit("-", 1)[0] if "-" in text else text


def epoch_of(package_version: str) -> str:
    head, colon, _ = package_version.partition(":")
    return head if colon and is_ascii_digits(head) else ""


@dataclass(frozen=True)
class PackageVersion:
    """What a banner says of a distribution package: upstream version, revision, release.

    ``revision`` is empty when the banner names the distribution but not the package
    revision (``Apache/2.4.57 (Debian)``); ``release`` is empty when nothing says
    which release (``deb12u3`` says Debian 12).
    """

    distro: str  # debian, ubuntu
    upstream: str
    revision: str = ""
    release: str = ""

    def full(self, epoch: str = "") -> str:
        """The package version, with the epoch the distribution data uses."""
        text = f"{self.upstream}-{self.revision}" if self.revision else self.upstream
        return f"{epoch}:{text}" if epoch else text


def installed_vs_fix(installed: PackageVersion, fixed: str) -> int | None:
    """-1 older than the fix, 0 or 1 at or past it; None when it cannot be told.

    Without a revision only the upstream part is known: older upstream means
    older than any fixed package of a newer upstream, and a fix of the same
    upstream (a backport) cannot be told apart.
    """
    upstream = compare_upstream(installed.upstream, upstream_of(fixed))
    if not installed.revision:
        return None if upstream == 0 else upstream
    if upstream != 0:
        return upstream
    return compare_package(installed.full(epoch_of(fixed)), fixed)
