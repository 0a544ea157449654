"""Probing one TLS endpoint with sslyze: suites, certificates, vulnerabilities.

Two ways to enumerate cipher suites, chosen by ``tls.suite_enumeration``:

- ``elimination`` (default): per protocol, offer every suite sslyze knows,
  note the one the server picks, offer the rest again, until the server
  refuses. That costs one connection per accepted suite plus one per
  protocol, instead of one per suite sslyze knows (about 530). The
  certificate chains come from those same handshakes. Where the server's
  answer cannot be read (it picked a suite vigie cannot name), the remaining
  suites are tested one by one, as sslyze does.
- ``per_suite``: sslyze's own scan commands, one connection per suite.

Vulnerability probes are sslyze's own scan jobs in both modes; elimination
skips those whose answer the enumeration already gives (Heartbleed and CCS
injection on a TLS 1.3 server, ROBOT without RSA key exchange, renegotiation
and compression without TLS 1.2 or older), with the verdict sslyze gives then.

Every job opens at most one connection (ROBOT's a few) and goes through the
sweep's runner, which applies the caps. Check IDs: none here; failures are
returned as :class:`ProbeProblem` values.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar
from typing import Protocol as TypingProtocol

from cryptography import x509
from nassl._nassl import OpenSSLError
from nassl.ephemeral_key_info import EphemeralKeyInfo
from nassl.ssl_client import (
    BaseSslClient,
    ClientCertificateRequested,
    OpenSslVerifyEnum,
    OpenSslVersionEnum,
    SslClient,
)
from sslyze import (
    CipherSuiteAcceptedByServer,
    CipherSuitesScanResult,
    ClientAuthRequirementEnum,
    CompressionScanResult,
    HeartbleedScanResult,
    OpenSslCcsInjectionScanResult,
    ProtocolWithOpportunisticTlsEnum,
    RobotScanResult,
    RobotScanResultEnum,
    ScanCommand,
    ServerNetworkConfiguration,
    ServerNetworkLocation,
    ServerTlsProbingResult,
    SessionRenegotiationScanResult,
    TlsVersionEnum,
)
from sslyze.connection_helpers.tls_connection import NoCiphersAvailableBugInSSlyze
from sslyze.errors import (
    ServerRejectedOpportunisticTlsNegotiation,
    ServerRejectedTlsHandshake,
    ServerTlsConfigurationNotSupported,
    TlsHandshakeTimedOut,
)
from sslyze.plugins.certificate_info.implementation import CertificateInfoScanResult
from sslyze.plugins.openssl_cipher_suites._test_cipher_suite import connect_with_cipher_suite
from sslyze.plugins.openssl_cipher_suites._tls12_workaround import WorkaroundForTls12ForCipherSuites
from sslyze.plugins.openssl_cipher_suites.cipher_suites import CipherSuite, CipherSuitesRepository
from sslyze.plugins.plugin_base import ScanJob, ScanJobResult
from sslyze.plugins.scan_commands import ScanCommandsRepository
from sslyze.server_connectivity import ServerConnectivityInfo, check_connectivity_to_server

from vigie.config import Settings
from vigie.scanner.tls._errors import JOB_FAILURES, PROBE_FAILURES, TIMEOUTS
from vigie.scanner.tls._model import (
    Endpoint,
    EndpointObservation,
    ProbeProblem,
    Protocol,
    RefusedDhKey,
    StartTls,
    Vulnerabilities,
)
from vigie.scanner.tls._names import to_ace
from vigie.scanner.tls._records import install as read_fragmented_handshakes
from vigie.scanner.tls._suites import key_exchange_of

T = TypeVar("T")
read_fragmented_handshakes()  # for sslyze's Heartbleed, CCS-injection and ROBOT probes


class Runner(TypingProtocol):
    """Runs one blocking job (one connection) within the sweep's caps."""

    def __call__(self, job: Callable[[], T]) -> Awaitable[T]: ...


NETWORK_MAX_RETRIES = 2

_STARTTLS = {
    StartTls.SMTP: ProtocolWithOpportunisticTlsEnum.SMTP,
    StartTls.IMAP: ProtocolWithOpportunisticTlsEnum.IMAP,
    StartTls.POP3: ProtocolWithOpportunisticTlsEnum.POP3,
}
_SUITE_COMMANDS = {
    Protocol.SSL_2_0: ScanCommand.SSL_2_0_CIPHER_SUITES,
    Protocol.SSL_3_0: ScanCommand.SSL_3_0_CIPHER_SUITES,
    Protocol.TLS_1_0: ScanCommand.TLS_1_0_CIPHER_SUITES,
    Protocol.TLS_1_1: ScanCommand.TLS_1_1_CIPHER_SUITES,
    Protocol.TLS_1_2: ScanCommand.TLS_1_2_CIPHER_SUITES,
    Protocol.TLS_1_3: ScanCommand.TLS_1_3_CIPHER_SUITES,
}
# Until the enumeration tells more, connections ask to be told of client-certificate
# requests (ClientCertificateRequested), which mean the server accepted the suite.
_ENUMERATION_PROBING = ServerTlsProbingResult(
    highest_tls_version_supported=TlsVersionEnum.TLS_1_2,
    cipher_suite_supported="",
    client_auth_requirement=ClientAuthRequirementEnum.REQUIRED,
    supports_ecdh_key_exchange=True,
)


def problem_from(probe: str, error: Exception) -> ProbeProblem:
    return ProbeProblem(
        probe, isinstance(error, TIMEOUTS), f"{type(error).__name__}: {error}"[:500]
    )


def server_location(
    domain: str, ip: str, endpoint: Endpoint, settings: Settings
) -> tuple[ServerNetworkLocation, ServerNetworkConfiguration]:
    """Where to connect (``ip``, never a DNS lookup) and what to say (SNI ``domain``, STARTTLS).

    The SNI is the A-label form of ``domain`` under IDNA 2008 (RFC 6066 §3,
    RFC 5891): sslyze would otherwise encode it with Python's IDNA 2003 codec
    (``faß.de`` -> ``fass.de``, another name). Raises ValueError for a name
    that has no A-label form.
    """
    ace = to_ace(domain)
    if ace is None:
        raise ValueError(f"{domain!r} is not a valid host name (IDNA 2008)")
    location = ServerNetworkLocation(hostname=ace, port=endpoint.port, ip_address=ip)
    network = ServerNetworkConfiguration(
        tls_server_name_indication=location.hostname,
        tls_opportunistic_encryption=_STARTTLS[endpoint.starttls] if endpoint.starttls else None,
        network_timeout=max(1, round(settings.scan.probe_timeout_s)),
        network_max_retries=NETWORK_MAX_RETRIES,
    )
    return location, network


# --- suite enumeration by elimination ----------------------------------------------------


@dataclass(frozen=True)
class SuiteGroup:
    """Suites offered together in one handshake: one protocol, one of nassl's two OpenSSLs."""

    protocol: Protocol
    legacy_openssl: bool
    suites: tuple[CipherSuite, ...]


@functools.cache
def suite_groups() -> tuple[SuiteGroup, ...]:
    """Every suite sslyze knows, grouped as sslyze tests them (TLS 1.2 needs both OpenSSLs)."""
    groups = []
    for protocol in Protocol:
        suites = sorted(
            CipherSuitesRepository.get_all_cipher_suites(protocol.sslyze), key=lambda s: s.name
        )
        if protocol is Protocol.TLS_1_3:
            groups.append(SuiteGroup(protocol, False, tuple(suites)))
        elif protocol is Protocol.TLS_1_2:
            legacy = tuple(s for s in suites if _needs_legacy_openssl(s.openssl_name))
            modern = tuple(s for s in suites if not _needs_legacy_openssl(s.openssl_name))
            groups += [SuiteGroup(protocol, True, legacy), SuiteGroup(protocol, False, modern)]
        else:
            groups.append(SuiteGroup(protocol, True, tuple(suites)))
    return tuple(groups)


@functools.cache
def _needs_legacy_openssl(openssl_name: str) -> bool:
    return WorkaroundForTls12ForCipherSuites.requires_legacy_openssl(openssl_name)


@dataclass(frozen=True)
class Offer:
    """The server's answer to one ClientHello offering several suites."""

    chosen: str | None  # OpenSSL name of the suite the server picked, if it picked one
    accepted: bool  # the server went through with it
    ephemeral_key: EphemeralKeyInfo | None = None
    chain_pem: tuple[str, ...] = ()
    client_cert_requested: bool = False
    timed_out: bool = False  # no answer at all before the network timeout
    stopped_early: bool = False  # the handshake was stopped at the server's certificate
    client_failure: str = ""  # the server answered, the client could not go on (why)


# Protocols whose handshake can stop at the server's certificate, before the client's
# half of the key exchange (TLS 1.3 sends its certificate encrypted, after it). Only
# with nassl's legacy OpenSSL (1.0.2): it still names the suite the server picked after
# such a stop, where 1.1.1 forgets it; and it is the one whose key exchanges are slow
# (a 2048-bit DHE handshake: 30 ms of CPU, against 7 ms with the modern one).
STOPPABLE = frozenset({Protocol.SSL_3_0, Protocol.TLS_1_0, Protocol.TLS_1_1, Protocol.TLS_1_2})
# Key exchanges whose ephemeral group a server chooses per certificate, not per suite
# (one DH group or curve for every suite of the kind): a handshake stopped early may
# take the ephemeral key of a complete one of the same kind. Export, anonymous, PSK,
# SRP and the rest are always completed.
SAME_KEY_PER_KIND = frozenset(
    {
        "RSA",
        "DHE_RSA",
        "DHE_DSS",
        "ECDHE_RSA",
        "ECDHE_ECDSA",
        "DH_RSA",
        "DH_DSS",
        "ECDH_RSA",
        "ECDH_ECDSA",
    }
)
# OpenSSL's error when a certificate cannot be verified: no trust anchor is loaded, so
# with verification on every certificate stops the handshake there.
_STOPPED_AT_CERTIFICATE = "certificate verify failed"
# OpenSSL errors that sslyze reads as a refusal but that are the client's own limits:
# the server picked a suite and sent its messages, the client could not take them in.
# "excessive message size": a message longer than the client's maximum (a certificate
# list over OpenSSL's 100 KiB max_cert_list, e.g. a certificate with 10,000 names).
CLIENT_LIMITS = {
    "excessive message size": (
        "the server chose a suite and sent a certificate message larger than the TLS"
        " client accepts (OpenSSL: excessive message size); its certificates were not"
        " read or judged"
    ),
}


def client_limit(error: ServerRejectedTlsHandshake) -> str:
    """Why the client, not the server, ended this handshake; "" for a real refusal."""
    message = error.error_message.lower()
    return next((why for known, why in CLIENT_LIMITS.items() if known in message), "")


def offer_suites(
    info: ServerConnectivityInfo,
    group: SuiteGroup,
    suites: Sequence[CipherSuite],
    *,
    stop_at_certificate: bool = False,
) -> Offer:
    """One handshake offering ``suites`` (blocking; runs on a worker thread).

    With ``stop_at_certificate`` the handshake ends when the server's certificate
    arrives: the suite it picked is known from its ServerHello, and the client's
    half of the key exchange is never computed.
    """
    version = group.protocol.sslyze
    connection = info.get_preconfigured_tls_connection(
        override_tls_version=version, should_use_legacy_openssl=group.legacy_openssl
    )
    client = connection.ssl_client
    names = ":".join(suite.openssl_name for suite in suites)
    if version is TlsVersionEnum.TLS_1_3 and isinstance(client, SslClient):
        client.set_ciphersuites(names)
    else:
        client.set_cipher_list(names)
    if stop_at_certificate:
        # sslyze builds its connections without verification and with no trust store;
        # nassl sets verification per connection only on its SSL object.
        client._ssl.set_verify(OpenSslVerifyEnum.PEER.value)
    requested = False
    try:
        try:
            connection.connect()
        except OpenSSLError as error:
            if stop_at_certificate and _STOPPED_AT_CERTIFICATE in str(error):
                chosen = client.get_current_cipher_name()
                return Offer(chosen, accepted=True, stopped_early=True)
            raise
        except ClientCertificateRequested:
            requested = True  # the server took the suite, then asked who we are
        except ServerTlsConfigurationNotSupported:
            # nassl refused the server's DH group as too small (sslyze raises this for
            # OpenSSL's "dh key too small" only): the server did pick the suite, and its
            # group is under OpenSSL's floor, which the DH check must hear of.
            chosen = client.get_current_cipher_name()
            return Offer(chosen, accepted=True, ephemeral_key=RefusedDhKey.unread())
        except ServerRejectedTlsHandshake as error:
            chosen = client.get_current_cipher_name()
            why = client_limit(error)
            if chosen and why:  # the server took the suite: the failure is the client's
                return Offer(chosen, accepted=True, client_failure=why)
            # None of the suites, unless the server picked one and then failed (sslyze: rejected).
            return Offer(chosen, accepted=False)
        except TlsHandshakeTimedOut:
            # sslyze reads silence as a refusal (some servers ignore versions they do not speak).
            return Offer(client.get_current_cipher_name(), accepted=False, timed_out=True)
        except NoCiphersAvailableBugInSSlyze:
            return Offer(None, accepted=False)  # this OpenSSL cannot offer any of them here
        return Offer(
            client.get_current_cipher_name(),
            accepted=True,
            ephemeral_key=client.get_ephemeral_key(),
            chain_pem=_received_chain(client),
            client_cert_requested=requested,
        )
    finally:
        connection.close()


def _received_chain(client: BaseSslClient) -> tuple[str, ...]:
    try:
        return tuple(client.get_received_chain())
    except ValueError:  # nassl's answer when the server sent none (anonymous suites)
        return ()


def _test_one_suite(
    info: ServerConnectivityInfo, group: SuiteGroup, suite: CipherSuite
) -> CipherSuiteAcceptedByServer | None:
    """sslyze's own single-suite test (blocking)."""
    try:
        outcome = connect_with_cipher_suite(info, group.protocol.sslyze, suite)
    except NoCiphersAvailableBugInSSlyze:
        return None  # sslyze skips suites its OpenSSL cannot offer with this protocol
    return with_refused_dh(outcome) if isinstance(outcome, CipherSuiteAcceptedByServer) else None


# Key exchanges whose ServerKeyExchange carries a finite-field DH group (RFC 5246 §7.4.3).
_FINITE_FIELD_EPHEMERAL = ("DHE_", "DH_anon")


def with_refused_dh(accepted: CipherSuiteAcceptedByServer) -> CipherSuiteAcceptedByServer:
    """sslyze's one-suite test keeps no key when its client refused the server's DH group
    ("dh key too small"): a finite-field DHE suite it accepts has one in every other case."""
    kex = key_exchange_of(accepted.cipher_suite.name)
    if accepted.ephemeral_key is None and kex.startswith(_FINITE_FIELD_EPHEMERAL):
        return replace(accepted, ephemeral_key=RefusedDhKey.unread())
    return accepted


def _suite_named(
    name: str, remaining: Sequence[CipherSuite], protocol: Protocol
) -> CipherSuite | None:
    for suite in remaining:
        if suite.openssl_name == name:
            return suite
    try:  # OpenSSL has aliases (EDH-/DHE-): compare the IANA names
        known = CipherSuitesRepository.get_cipher_suite_with_openssl_name(protocol.sslyze, name)
    except ValueError:
        return None
    return next((suite for suite in remaining if suite.name == known.name), None)


@dataclass
class GroupOutcome:
    accepted: list[CipherSuiteAcceptedByServer] = field(default_factory=list)
    chains: list[tuple[str, ...]] = field(default_factory=list)
    client_cert_requested: bool = False
    silent: bool = False  # the server did not answer the first offer at all
    client_failures: set[str] = field(default_factory=set)  # Offer.client_failure values


async def eliminate(run: Runner, info: ServerConnectivityInfo, group: SuiteGroup) -> GroupOutcome:
    """Accepted suites of ``group``: offer all, drop the one picked, repeat until refused.

    The first handshake of each key exchange kind is completed (its certificate
    chain, its ephemeral key); later ones stop at the server's certificate and
    take the ephemeral key of their kind. A handshake stopped on a suite of a
    kind not yet completed is done again, completely, with that suite alone.
    """
    outcome = GroupOutcome()
    remaining = list(group.suites)
    completed: dict[str, EphemeralKeyInfo | None] = {}  # key exchange kind -> its key
    stoppable = group.legacy_openssl and group.protocol in STOPPABLE
    while remaining:
        stop = stoppable and bool(completed)
        offer = await run(
            functools.partial(offer_suites, info, group, tuple(remaining), stop_at_certificate=stop)
        )
        outcome.client_cert_requested |= offer.client_cert_requested
        outcome.silent |= offer.timed_out and len(remaining) == len(group.suites)
        if offer.client_failure:
            outcome.client_failures.add(offer.client_failure)
        suite = _suite_named(offer.chosen, remaining, group.protocol) if offer.chosen else None
        if suite is None:
            if offer.accepted:  # accepted, but which suite is unknown: ask about each one
                tested = await asyncio.gather(
                    *(run(functools.partial(_test_one_suite, info, group, s)) for s in remaining)
                )
                outcome.accepted += [accepted for accepted in tested if accepted is not None]
            return outcome
        kind = key_exchange_of(suite.name)
        if offer.client_failure:  # nothing to redo: the client fails the same way alone
            offer = replace(offer, ephemeral_key=completed.get(kind))
        elif offer.stopped_early:
            if kind in completed:
                offer = replace(offer, ephemeral_key=completed[kind])
            else:
                offer = await run(functools.partial(offer_suites, info, group, (suite,)))
                outcome.client_cert_requested |= offer.client_cert_requested
        remaining.remove(suite)
        if not offer.accepted:
            continue
        outcome.accepted.append(
            CipherSuiteAcceptedByServer(cipher_suite=suite, ephemeral_key=offer.ephemeral_key)
        )
        if offer.chain_pem:
            outcome.chains.append(offer.chain_pem)
        complete = not offer.stopped_early and not offer.client_failure
        if complete and kind in SAME_KEY_PER_KIND:
            completed.setdefault(kind, offer.ephemeral_key)
    return outcome


# --- sslyze scan commands -------------------------------------------------------------------


def _job_outcome(job: ScanJob) -> ScanJobResult:
    """Run one sslyze job; keep its failure for the scan command to judge, as sslyze does."""
    try:
        return ScanJobResult(
            _return_value=job.function_to_call(*job.function_arguments), _exception=None
        )
    except JOB_FAILURES as error:
        return ScanJobResult(_return_value=None, _exception=error)


async def run_command(run: Runner, info: ServerConnectivityInfo, command: ScanCommand) -> Any:
    """One sslyze scan command: its jobs on the sweep's threads, then its verdict (may raise)."""
    implementation = ScanCommandsRepository.get_implementation_cls(command)
    jobs = implementation.scan_jobs_for_scan_command(info, None)
    outcomes = await asyncio.gather(*(run(functools.partial(_job_outcome, job)) for job in jobs))
    return implementation.result_for_completed_scan_jobs(info, list(outcomes))


@dataclass
class _Collected:
    """An endpoint's observation while it is being built."""

    endpoint: Endpoint
    suites: dict[Protocol, CipherSuitesScanResult] = field(default_factory=dict)
    chains: list[tuple[x509.Certificate, ...]] = field(default_factory=list)
    problems: list[ProbeProblem] = field(default_factory=list)
    speaks_tls: bool = True
    vulnerabilities: dict[str, Any] = field(default_factory=dict)

    async def attempt(self, probe: str, work: Awaitable[T]) -> T | None:
        """Await ``work``; a failure becomes a problem of this endpoint (or proves no STARTTLS)."""
        try:
            return await work
        except ServerRejectedOpportunisticTlsNegotiation:
            self.speaks_tls = False  # no STARTTLS here: the service family reports cleartext mail
        except PROBE_FAILURES as error:
            self.problems.append(problem_from(probe, error))
        return None

    def observation(self, connections: int) -> EndpointObservation:
        return EndpointObservation(
            endpoint=self.endpoint,
            speaks_tls=self.speaks_tls
            and any(r.accepted_cipher_suites for r in self.suites.values()),
            suites=self.suites,
            chains=tuple(self.chains),
            vulnerabilities=Vulnerabilities(**self.vulnerabilities),
            problems=tuple(self.problems),
            connections=connections,
        )


def parse_chains(chains_pem: Iterable[tuple[str, ...]]) -> list[tuple[x509.Certificate, ...]]:
    """Distinct chains, one per leaf, in the order given."""
    seen: set[str] = set()
    parsed = []
    for chain in chains_pem:
        if not chain or chain[0] in seen:
            continue
        seen.add(chain[0])
        parsed.append(tuple(x509.load_pem_x509_certificate(pem.encode("ascii")) for pem in chain))
    return parsed


# --- the two enumeration modes ----------------------------------------------------------------


async def enumerate_by_elimination(
    run: Runner,
    location: ServerNetworkLocation,
    network: ServerNetworkConfiguration,
    endpoint: Endpoint,
) -> tuple[_Collected, ServerConnectivityInfo | None]:
    """Suites and chains by elimination; the connectivity info the vulnerability probes need."""
    info = ServerConnectivityInfo(location, network, _ENUMERATION_PROBING)
    collected = _Collected(endpoint)
    groups = suite_groups()
    results = await asyncio.gather(
        *(
            collected.attempt(f"tls.suites.{g.protocol.value}", eliminate(run, info, g))
            for g in groups
        )
    )
    by_protocol: dict[Protocol, list[GroupOutcome | None]] = {}
    for group, result in zip(groups, results, strict=True):
        by_protocol.setdefault(group.protocol, []).append(result)
    chains_pem: list[tuple[str, ...]] = []
    requested = False
    client_failures = sorted({why for o in results if o is not None for why in o.client_failures})
    for why in client_failures:
        collected.problems.append(ProbeProblem("tls.handshake", False, why))
    for protocol in reversed(Protocol):  # chains of the newest protocols first
        outcomes = by_protocol[protocol]
        if any(o is None for o in outcomes):
            continue  # a failed group: this protocol was not established either way
        accepted = [a for o in outcomes if o is not None for a in o.accepted]
        accepted.sort(key=lambda a: a.cipher_suite.name, reverse=True)
        collected.suites[protocol] = CipherSuitesScanResult(protocol.sslyze, accepted, [])
        for o in outcomes:
            if o is not None:
                chains_pem += o.chains
                requested |= o.client_cert_requested
    collected.chains = parse_chains(chains_pem)
    answered = any(result.accepted_cipher_suites for result in collected.suites.values())
    if not answered and any(o is not None and o.silent for o in results):
        # Silence is not a refusal when nothing answered at all: the port proved nothing.
        seconds = network.network_timeout
        collected.problems.append(
            ProbeProblem("tls.handshake", True, f"no TLS answer within {seconds} s")
        )
    probing = _probing_result(collected.suites, requested)
    if probing is None:
        return collected, None
    return collected, ServerConnectivityInfo(location, network, probing)


@functools.cache
def _modern_client_tls12_names() -> frozenset[str]:
    """Suites the modern OpenSSL offers with TLS 1.2: the client sslyze's probes use for it."""
    client = SslClient(ssl_version=OpenSslVersionEnum.TLSV1_2)
    client.set_cipher_list("ALL:COMPLEMENTOFALL")
    return frozenset(client.get_cipher_list())


def _probe_suite_preference(suite: CipherSuite) -> tuple[bool, bool]:
    """The suite sslyze's vulnerability probes will offer: neither NULL nor anonymous when
    the server takes another (nassl cannot offer NULL-SHA, and sslyze's own connectivity
    test would have negotiated a real suite)."""
    return "NULL" in suite.openssl_name, suite.is_anonymous


def _probing_result(
    suites: Mapping[Protocol, CipherSuitesScanResult], requested: bool
) -> ServerTlsProbingResult | None:
    """What sslyze's connectivity test would have found, from the enumeration."""
    modern_tls12 = _modern_client_tls12_names()
    for protocol in reversed(Protocol):
        result = suites.get(protocol)
        if protocol is Protocol.SSL_2_0 or result is None:
            continue  # sslyze refuses to scan a server that only speaks SSL 2.0
        usable = sorted(
            (
                a.cipher_suite
                for a in result.accepted_cipher_suites
                if protocol is not Protocol.TLS_1_2 or a.cipher_suite.openssl_name in modern_tls12
            ),
            key=_probe_suite_preference,
        )
        if usable:
            ecdh = any(
                "ECDHE" in a.cipher_suite.name
                for r in suites.values()
                for a in r.accepted_cipher_suites
            )
            return ServerTlsProbingResult(
                highest_tls_version_supported=protocol.sslyze,
                cipher_suite_supported=usable[0].openssl_name,
                client_auth_requirement=ClientAuthRequirementEnum.OPTIONAL
                if requested
                else ClientAuthRequirementEnum.DISABLED,
                supports_ecdh_key_exchange=ecdh or protocol is Protocol.TLS_1_3,
            )
    return None


async def enumerate_per_suite(
    run: Runner,
    location: ServerNetworkLocation,
    network: ServerNetworkConfiguration,
    endpoint: Endpoint,
) -> tuple[_Collected, ServerConnectivityInfo | None]:
    """sslyze's connectivity test, six suite commands and certificate_info."""
    collected = _Collected(endpoint)
    try:
        probing = await run(functools.partial(check_connectivity_to_server, location, network))
    except ServerTlsConfigurationNotSupported:
        # sslyze's verdict when no handshake completed, its own client's refusals included
        # (a DH group under OpenSSL's floor, a certificate list over its limit): the
        # elimination tells those from the server's refusals, and reads what it can.
        return await enumerate_by_elimination(run, location, network, endpoint)
    except ServerRejectedOpportunisticTlsNegotiation:
        collected.speaks_tls = False
        return collected, None
    except PROBE_FAILURES as error:
        collected.problems.append(problem_from("tls.connectivity", error))
        return collected, None
    info = ServerConnectivityInfo(location, network, probing)
    suite_results = await asyncio.gather(
        *(
            collected.attempt(f"tls.suites.{p.value}", run_command(run, info, c))
            for p, c in _SUITE_COMMANDS.items()
        )
    )
    for protocol, result in zip(_SUITE_COMMANDS, suite_results, strict=True):
        if isinstance(result, CipherSuitesScanResult):
            accepted = [with_refused_dh(a) for a in result.accepted_cipher_suites]
            collected.suites[protocol] = replace(result, accepted_cipher_suites=accepted)
    certificates = await collected.attempt(
        "tls.certificate", run_command(run, info, ScanCommand.CERTIFICATE_INFO)
    )
    if isinstance(certificates, CertificateInfoScanResult):
        collected.chains = [
            tuple(d.received_certificate_chain) for d in certificates.certificate_deployments
        ]
    return collected, info


# --- vulnerabilities ------------------------------------------------------------------------


_NOT_APPLICABLE_TLS13: dict[str, Any] = {
    "heartbleed": HeartbleedScanResult(is_vulnerable_to_heartbleed=False),
    "ccs_injection": OpenSslCcsInjectionScanResult(is_vulnerable_to_ccs_injection=False),
}
_NOT_APPLICABLE_NO_LEGACY: dict[str, Any] = {
    # What sslyze answers for a server that speaks only TLS 1.3.
    "renegotiation": SessionRenegotiationScanResult(
        supports_secure_renegotiation=True,
        is_vulnerable_to_client_renegotiation_dos=False,
        client_renegotiations_success_count=0,
    ),
    "compression": CompressionScanResult(supports_compression=False),
}
_VULN_COMMANDS = {
    "heartbleed": ScanCommand.HEARTBLEED,
    "ccs_injection": ScanCommand.OPENSSL_CCS_INJECTION,
    "robot": ScanCommand.ROBOT,
    "renegotiation": ScanCommand.SESSION_RENEGOTIATION,
    "compression": ScanCommand.TLS_COMPRESSION,
}
# sslyze's scan commands whose answers vigie gives (per_suite mode runs exactly these):
# what a fair "sslyze alone" benchmark should run.
EQUIVALENT_SSLYZE_COMMANDS = frozenset(
    {*_SUITE_COMMANDS.values(), ScanCommand.CERTIFICATE_INFO, *_VULN_COMMANDS.values()}
)
_PRE_TLS13 = (Protocol.SSL_3_0, Protocol.TLS_1_0, Protocol.TLS_1_1, Protocol.TLS_1_2)


def answered_by_enumeration(
    suites: Mapping[Protocol, CipherSuitesScanResult], highest: TlsVersionEnum
) -> dict[str, Any]:
    """The vulnerability verdicts sslyze would give without testing, given the accepted suites."""
    known: dict[str, Any] = {}
    if highest is TlsVersionEnum.TLS_1_3:
        known.update(_NOT_APPLICABLE_TLS13)
    legacy = [suites[p] for p in _PRE_TLS13 if p in suites and suites[p].accepted_cipher_suites]
    if not legacy and all(p in suites for p in _PRE_TLS13):
        known.update(_NOT_APPLICABLE_NO_LEGACY)
    rsa = any(
        key_exchange_of(a.cipher_suite.name).startswith("RSA")
        for r in legacy
        for a in r.accepted_cipher_suites
    )
    if not rsa and all(p in suites for p in _PRE_TLS13):
        known["robot"] = RobotScanResult(RobotScanResultEnum.NOT_VULNERABLE_RSA_NOT_SUPPORTED)
    return known


async def probe_vulnerabilities(
    run: Runner, info: ServerConnectivityInfo, collected: _Collected, skip_known: bool
) -> None:
    """Heartbleed, CCS injection, ROBOT, renegotiation and compression, concurrently."""
    highest = info.tls_probing_result.highest_tls_version_supported
    known = answered_by_enumeration(collected.suites, highest) if skip_known else {}
    collected.vulnerabilities.update(known)
    names = [name for name in _VULN_COMMANDS if name not in known]
    results = await asyncio.gather(
        *(
            collected.attempt(f"tls.{name}", run_command(run, info, _VULN_COMMANDS[name]))
            for name in names
        )
    )
    for name, result in zip(names, results, strict=True):
        if result is not None:
            collected.vulnerabilities[name] = result
