"""The sweep-wide TLS machinery, shared by every host (``ctx.shared["tls"]``).

sslyze's ``Scanner`` takes one batch of servers and runs it to the end; the
engine instead hands vigie one host at a time, concurrently. So vigie keeps
sslyze's rule (one job = at most one connection, a cap per server) but runs
the jobs of every host on one thread pool for the whole sweep, each job
holding a per-server slot and the engine's connection slot and rate token.
It also keeps what the certificate checks share across hosts: the trust
anchors, and the intermediates servers sent (to tell a missing intermediate
from an unknown CA).
"""

from __future__ import annotations

import asyncio
import functools
import warnings
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cryptography import x509
from sslyze.plugins.certificate_info.trust_stores.trust_store_repository import (
    TrustStoresRepository,
)

from vigie.config import Settings
from vigie.model import HostTarget
from vigie.scanner.base import ProbeContext, until_done
from vigie.scanner.tls._certificates import CertificateIndex, TrustAnchors, is_self_issued
from vigie.scanner.tls._errors import PROBE_FAILURES

SHARED_KEY = "tls"
EXTRA_STORE_NAME = "extra CA file"
# How long a chain that reaches no trusted root waits for the certificate
# harvest of the hosts scanned alongside, which may hold its missing intermediate.
HARVEST_WAIT_S = 10.0

T = TypeVar("T")


@dataclass(frozen=True)
class TrustMaterial:
    anchors: TrustAnchors
    intermediates: tuple[x509.Certificate, ...]  # non-root certificates of the extra CA file


@functools.lru_cache(maxsize=4)
def _load_trust(extra_ca_file: Path | None, _mtime: float) -> TrustMaterial:
    stores: dict[str, list[x509.Certificate]] = {}
    # Some bundled roots have non-positive serial numbers: cryptography warns, they still work.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for store in TrustStoresRepository.get_default().get_all_stores():
            stores[store.name] = x509.load_pem_x509_certificates(store.path.read_bytes())
    intermediates: list[x509.Certificate] = []
    if extra_ca_file is not None:
        extra = x509.load_pem_x509_certificates(extra_ca_file.read_bytes())
        # Only roots are anchors: an intermediate in the file must still chain to one,
        # and a server that omits it is still told its chain is incomplete.
        stores[EXTRA_STORE_NAME] = [cert for cert in extra if is_self_issued(cert)]
        intermediates = [cert for cert in extra if not is_self_issued(cert)]
    return TrustMaterial(TrustAnchors.from_stores(stores), tuple(intermediates))


def load_trust(extra_ca_file: Path | None) -> TrustMaterial:
    """sslyze's bundled trust stores plus the deployment's extra CA file (cached per process)."""
    mtime = extra_ca_file.stat().st_mtime if extra_ca_file is not None else 0.0
    return _load_trust(extra_ca_file, mtime)


@dataclass(frozen=True)
class _Failed:
    error: Exception


def _captured(job: Callable[[], T]) -> T | _Failed:
    try:
        return job()
    except PROBE_FAILURES as error:
        return _Failed(error)


class TlsSweep:
    """Thread pool, per-server caps, trust anchors and the intermediate harvest of one sweep."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(
            max_workers=settings.tls.worker_threads, thread_name_prefix="vigie-tls"
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._trust: asyncio.Future[TrustMaterial] | None = None
        # Hosts collecting certificates; done ones are kept while they are in flight.
        self._harvests: dict[HostTarget, asyncio.Future[None]] = {}
        self.intermediates = CertificateIndex()
        self.jobs_per_server: Counter[str] = Counter()

    def _on_this_loop(self) -> asyncio.AbstractEventLoop:
        """Loop-bound state starts afresh when a context is reused across event loops."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop = loop
            self._slots = {}
            self._trust = None
            self._harvests = {}
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
            self._trust = loop.run_in_executor(
                self._executor, load_trust, self.settings.tls.extra_ca_file
            )
        material = await asyncio.shield(self._trust)
        if not self.intermediates:
            for cert in material.intermediates:
                self.intermediates.add(cert)
        return material

    def harvesting(self, target: HostTarget) -> AbstractContextManager[None]:
        """Mark a host whose certificates are still being collected, until the block ends
        (its future stays, done, while the host is in flight)."""
        self._on_this_loop()
        return until_done(self._harvests, target, keep=True)

    def learn(self, chains: Iterable[tuple[x509.Certificate, ...]]) -> None:
        """Remember the CA certificates servers sent, for other hosts' incomplete chains."""
        for chain in chains:
            for cert in chain[1:]:
                if not is_self_issued(cert):
                    self.intermediates.add(cert)

    async def wait_for_other_harvests(self, ctx: ProbeContext, mine: HostTarget) -> bool:
        """Wait (bounded) for what the other hosts in flight may still send; True if any.

        A host counts until its certificates are collected, or, when it has not
        reached the TLS family yet (its ports are still being scanned), until it
        is done: any of them may hold the missing intermediate.
        """
        in_flight = ctx.hosts_in_flight
        self._harvests = {
            host: done
            for host, done in self._harvests.items()
            if not done.done() or host in in_flight
        }
        others = [done for host, done in self._harvests.items() if host != mine]
        others += [
            done for host, done in in_flight.items() if host != mine and host not in self._harvests
        ]
        pending = [done for done in others if not done.done()]
        if not pending:
            return False
        await asyncio.wait(pending, timeout=HARVEST_WAIT_S)
        return True

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
