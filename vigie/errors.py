"""vigie's exception tree. Mapped once, at the CLI edge, to messages and exit codes.

::

    VigieError                      exit 1 unless a subclass says otherwise
    ├── UsageError                  exit 2: bad input from the user
    │   ├── ConfigError             the configuration file or environment (names the key)
    │   │   └── CatalogueError      a check catalogue data file (vigie.catalogue)
    │   ├── RegistryImportError     a registry file; nothing was imported
    │   └── NotFoundError           a named agency, domain, finding... does not exist
    ├── ScopeViolation              an address outside the scope was about to be contacted
    ├── ProbeError                  a probe failed (becomes a scan.error finding)
    │   └── ProbeTimeout            a probe hit its deadline (becomes a scan.timeout finding)
    ├── SweepLocked                 another full sweep holds the lock
    ├── SweepInterrupted            exit 143: SIGTERM stopped a sweep; --resume finishes it
    └── DeliveryError               an email could not be handed to the SMTP server

Module-private errors (an HTTP body that cannot be decoded, an SMTP reply that is
not one, the SPF evaluator's own stops) also derive from ``VigieError``; so does
``UnknownCheckError`` (a ``NotFoundError`` that is also a ``KeyError``).

Each lower library's errors are mapped to this tree at its one door, by one context
manager: ``nmap_errors()`` in ``vigie.scanner.ports``, ``_probe_errors()`` (httpx and
httpcore) in ``vigie.scanner.http._client``, ``smtp_errors()`` in ``vigie.notify._smtp``;
sslyze's and nassl's are listed once in ``vigie.scanner.tls._errors`` and dnspython's
become an answer's outcome in ``vigie.scanner.resolve`` (failures are data there).
Only the engine and ``run_checks`` catch bare ``Exception``.
"""

from __future__ import annotations


class VigieError(Exception):
    """Base of every error vigie raises on purpose."""

    exit_code = 1


class UsageError(VigieError):
    """Bad input from the user: exit status 2."""

    exit_code = 2


class ConfigError(UsageError):
    """The configuration file or environment is invalid."""


class RegistryImportError(UsageError):
    """A registry file is malformed; nothing was imported."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class NotFoundError(UsageError):
    """A named agency, domain or finding does not exist."""


class ScopeViolation(VigieError):
    """An address outside the configured scope was about to be contacted."""


class ProbeError(VigieError):
    """A probe failed: refused, reset, unreadable answer, or (``ProbeTimeout``) too slow."""


class ProbeTimeout(ProbeError):
    """A probe hit its deadline."""


class SweepLocked(VigieError):
    """Another full sweep is running: this one was not started (exit status 75,
    EX_TEMPFAIL: "try again later", so cron wrappers can tell it from a failure)."""

    exit_code = 75


class StorageError(VigieError):
    """The database refused a sweep's results (read-only, out of space, unreachable):
    exit status 74 (EX_IOERR). What was stored is kept; ``--resume`` finishes the run."""

    exit_code = 74


class SweepInterrupted(VigieError):
    """SIGTERM stopped a sweep; what finished is stored and the rest resumes later."""

    exit_code = 143  # 128 + SIGTERM, as a shell reports it


class DeliveryError(VigieError):
    """An email could not be handed to the SMTP server."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        self.permanent = permanent
        super().__init__(message)


class VulnDataError(UsageError):
    """A vulnerability data file that cannot be imported (names the file and the record)."""
