"""The sweep-wide TLS machinery, shared by every host (``ctx.shared["tls"]``).

sslyze's ``Scanner`` takes one batch of servers and runs it to the end; the
engine instead hands vigie one host at a time, concurrently. So vigie keeps
sslyze's rule (one job = at most one connection, a cap per server) but runs
the jobs of every host on one thread pool for the whole sweep, each job
holding a per-server slot and the engine's connection slot and rate token.
It also holds the trust anchors, loaded once. Nothing one host sent changes
the verdict on another: a host gets the same verdicts alone or in a sweep.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import warnings
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import certifi
from cryptography import x509

from vigie.config import Settings
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.tls._certificates import CertificateIndex, TrustAnchors, is_self_issued
from vigie.scanner.tls._errors import PROBE_FAILURES
from vigie.scanner.tls._mail import MailExchangers

SHARED_KEY = "tls"
EXTRA_STORE_NAME = "extra CA file"
MOZILLA_STORE_NAME = "Mozilla (certifi)"
SYSTEM_STORE_NAME = "system"
# Debian's bundle, when Python's OpenSSL names no CA file of its own.
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

T = TypeVar("T")


@dataclass(frozen=True)
class TrustMaterial:
    anchors: TrustAnchors
    intermediates: tuple[x509.Certificate, ...]  # non-root certificates of the extra CA file


def root_bundle(trust_store: Literal["mozilla", "system"]) -> tuple[str, Path]:
    """The name and PEM file of the one root store chains are judged against."""
    if trust_store == "system":
        cafile = ssl.get_default_verify_paths().cafile
        return SYSTEM_STORE_NAME, Path(cafile) if cafile else SYSTEM_BUNDLE
    return MOZILLA_STORE_NAME, Path(certifi.where())


@functools.lru_cache(maxsize=4)
def _load_trust(
    extra_ca_file: Path | None, _mtime: float, trust_store: Literal["mozilla", "system"]
) -> TrustMaterial:
    stores: dict[str, list[x509.Certificate]] = {}
    name, bundle = root_bundle(trust_store)
    # Some bundled roots have non-positive serial numbers: cryptography warns, they still work.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stores[name] = x509.load_pem_x509_certificates(bundle.read_bytes())
    intermediates: list[x509.Certificate] = []
    if extra_ca_file is not None:
        extra = x509.load_pem_x509_certificates(extra_ca_file.read_bytes())
        # Only roots are anchors: an intermediate in the file must still chain to one,
        # and a server that omits it is still told its chain is incomplete.
        stores[EXTRA_STORE_NAME] = [cert for cert in extra if is_self_issued(cert)]
        intermediates = [cert for cert in extra if not is_self_issued(cert)]
    return TrustMaterial(TrustAnchors.from_stores(stores), tuple(intermediates))


def load_trust(
    extra_ca_file: Path | None, trust_store: Literal["mozilla", "system"] = "mozilla"
) -> TrustMaterial:
    """One root store plus the deployment's extra CA file (cached per process).

    The anchors are built once, with their ``cryptography`` verification store.
    """
    mtime = extra_ca_file.stat().st_mtime if extra_ca_file is not None else 0.0
    material = _load_trust(extra_ca_file, mtime, trust_store)
    material.anchors.store  # noqa: B018 - build the verification store off the event loop
    return material


@dataclass(frozen=True)
class _Failed:
    error: Exception


def _captured(job: Callable[[], T]) -> T | _Failed:
    try:
        return job()
    except PROBE_FAILURES as error:
        return _Failed(error)


class TlsSweep:
    """Thread pool, per-server caps and trust anchors of one sweep."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(
            max_workers=settings.tls.worker_threads, thread_name_prefix="vigie-tls"
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._trust: asyncio.Future[TrustMaterial] | None = None
        # The extra CA file's intermediates: configuration, the same for every host.
        self.intermediates = CertificateIndex()
        self._exchangers: dict[str, asyncio.Future[MailExchangers]] = {}
        self.jobs_per_server: Counter[str] = Counter()

    def _on_this_loop(self) -> asyncio.AbstractEventLoop:
        """Loop-bound state starts afresh when a context is reused across event loops."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._slots = {}
            self._trust = None
            self._exchangers = {}
        return loop

    async def run(self, ctx: ProbeContext, ip: str, job: Callable[[], T]) -> T:
        """Run ``job`` (one connection to ``ip``) on the sweep's threads, within every cap."""
        loop = self._on_this_loop()
        slots = self._slots.get(ip)
        if slots is None:
            slots = asyncio.Semaphore(self.settings.tls.connections_per_server)
            self._slots[ip] = slots
        async with slots, ctx.connection(ip):
            self.jobs_per_server[ip] += 1
            outcome = await loop.run_in_executor(self._executor, _captured, job)
        # sslyze's exceptions are frozen dataclasses: contextlib cannot re-raise them
        # through an async context manager (it sets __traceback__), so they leave here.
        if isinstance(outcome, _Failed):
            raise outcome.error
        return outcome

    async def trust(self) -> TrustMaterial:
        """The trust anchors, loaded once (off the event loop: parsing them takes a moment)."""
        loop = self._on_this_loop()
        if self._trust is None:
            tls = self.settings.tls
            self._trust = loop.run_in_executor(
                self._executor, load_trust, tls.extra_ca_file, tls.trust_store
            )
        material = await asyncio.shield(self._trust)
        if not self.intermediates:
            for cert in material.intermediates:
                self.intermediates.add(cert)
        return material

    async def exchangers(
        self, domain: str, lookup: Callable[[], Awaitable[MailExchangers]]
    ) -> MailExchangers:
        """The MX hosts of ``domain``, looked up once per sweep (``lookup`` makes the queries)."""
        self._on_this_loop()
        found = self._exchangers.get(domain)
        if found is None:
            found = asyncio.ensure_future(lookup())
            self._exchangers[domain] = found
        return await asyncio.shield(found)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def sweep_of(ctx: ProbeContext) -> TlsSweep:
    """The sweep's TLS machinery, created on first use and closed with the context."""
    sweep = ctx.shared.get(SHARED_KEY)
    if not isinstance(sweep, TlsSweep):
        sweep = TlsSweep(ctx.settings)
        ctx.shared[SHARED_KEY] = sweep
        ctx.closers.append(sweep.aclose)
    return sweep
