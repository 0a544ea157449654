"""The TLS family for one host: probe its TLS endpoints, then judge what was seen.

Check IDs emitted here: ``scan.timeout``, ``scan.error`` (a probe that could
not answer, or a handshake the client could not complete; the family is then
incomplete) and ``scan.out_of_scope``; the ``tls.*`` IDs come from
``_suites``, ``_certificates``, ``_vulns`` and ``_ports``.

Certificates are judged against the scanned domain; on mail endpoints
(STARTTLS, SMTPS, IMAPS, POP3S) also against the domain's MX hosts at this
address (``_mail``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar

from cryptography import x509
from sslyze.server_connectivity import ServerConnectivityInfo

from vigie.errors import ScopeViolation
from vigie.model import Family, FamilyResult, Finding, HostTarget, OpenPort, utcnow
from vigie.scanner.probe_context import ProbeContext, run_checks, scan_problem
from vigie.scanner.tls._certificates import (
    CertificatePolicy,
    ChainVerdict,
    certificate_findings,
    evaluate_chain,
)
from vigie.scanner.tls._mail import lookup_exchangers, serves_mail
from vigie.scanner.tls._model import Endpoint, EndpointObservation, ProbeProblem
from vigie.scanner.tls._names import covers_hostname
from vigie.scanner.tls._ports import endpoints_to_scan, tls_missing_findings, web_ports
from vigie.scanner.tls._probe import (
    Runner,
    _Collected,
    enumerate_by_elimination,
    enumerate_per_suite,
    probe_vulnerabilities,
    problem_from,
    server_location,
)
from vigie.scanner.tls._resources import TlsSweep, TrustMaterial, sweep_of
from vigie.scanner.tls._suites import cipher_findings, dh_findings, protocol_findings
from vigie.scanner.tls._vulns import vulnerability_findings

T = TypeVar("T")


class CountingRunner:
    """The sweep's runner for one endpoint, counting the jobs (connections) it starts."""

    def __init__(self, ctx: ProbeContext, sweep: TlsSweep, ip: str) -> None:
        self._ctx, self._sweep, self._ip = ctx, sweep, ip
        self.jobs = 0

    async def __call__(self, job: Callable[[], T]) -> T:
        self.jobs += 1
        return await self._sweep.run(self._ctx, self._ip, job)


async def _enumerate(
    ctx: ProbeContext, target: HostTarget, endpoint: Endpoint, run: Runner
) -> tuple[_Collected, ServerConnectivityInfo | None]:
    collected = _Collected(endpoint)
    try:
        location, network = server_location(target.domain, target.ip, endpoint, ctx.settings)
    except (UnicodeError, ValueError) as error:  # a name the IDNA codec refuses
        collected.problems.append(problem_from("tls.location", error))
        return collected, None
    if ctx.settings.tls.suite_enumeration == "per_suite":
        return await enumerate_per_suite(run, location, network, endpoint)
    return await enumerate_by_elimination(run, location, network, endpoint)


def _verdicts(
    sweep: TlsSweep, material: TrustMaterial, chains: Sequence[tuple[x509.Certificate, ...]]
) -> list[ChainVerdict]:
    """Each chain judged on its own (and the configuration): never on other hosts' chains."""
    now = utcnow()
    return [evaluate_chain(chain, material.anchors, sweep.intermediates, now) for chain in chains]


async def _mail_policy(
    ctx: ProbeContext, sweep: TlsSweep, target: HostTarget, collected: _Collected
) -> CertificatePolicy | None:
    """The names a mail endpoint's certificate may present (``_mail``); None: the domain.

    The MX lookup is made only when a certificate does not cover the domain
    itself; a failed lookup is a problem of the endpoint (nothing is concluded).
    """
    policy = CertificatePolicy(target.domain, utcnow(), ctx.settings.tls.expiry_warning_days)
    if not serves_mail(collected.endpoint):
        return None
    if all(covers_hostname(chain[0], target.domain) for chain in collected.chains):
        return None
    exchangers = await sweep.exchangers(
        target.domain, lambda: lookup_exchangers(ctx.resolver, target.domain)
    )
    if exchangers.failure:
        collected.problems.append(ProbeProblem("tls.mail_hosts", False, exchangers.failure))
        return CertificatePolicy(target.domain, policy.now, policy.expiry_warning_days, ())
    names = tuple(dict.fromkeys((target.domain, *exchangers.names_at(target.ip))))
    return CertificatePolicy(target.domain, policy.now, policy.expiry_warning_days, names)


def _problem_findings(target: HostTarget, observation: EndpointObservation) -> list[Finding]:
    findings = []
    for timed_out, check_id in ((True, "scan.timeout"), (False, "scan.error")):
        problems = [p for p in observation.problems if p.timed_out is timed_out]
        if problems:
            detail = "; ".join(f"{p.probe}: {p.detail}" for p in problems)
            probe = f"tls:{observation.endpoint.label}"
            findings.append(
                scan_problem(target, check_id, probe, detail, observation.endpoint.port)
            )
    return findings


def endpoint_findings(
    target: HostTarget,
    observation: EndpointObservation,
    verdicts: Sequence[ChainVerdict],
    policy: CertificatePolicy,
) -> list[Finding]:
    """Every finding for one endpoint (pure)."""
    findings = _problem_findings(target, observation)
    if not observation.speaks_tls:
        return findings
    endpoint, suites = observation.endpoint, observation.suites
    findings += run_checks(
        target,
        (protocol_findings, target, endpoint, suites),
        (cipher_findings, target, endpoint, suites),
        (dh_findings, target, endpoint, suites),
        (certificate_findings, target, endpoint, verdicts, policy),
        (vulnerability_findings, target, endpoint, observation.vulnerabilities),
    )
    return findings


async def check_tls(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
    """The TLS checks of one (domain, address): every TLS port, plus ``tls.missing``."""
    result = FamilyResult(family=Family.TLS)
    endpoints = endpoints_to_scan(ports)
    if not endpoints:
        result.extend(tls_missing_findings(target, ports, []))
        return result
    try:
        ctx.require_in_scope(
            target.ip
        )  # sslyze opens its own sockets: check before handing it the host
    except ScopeViolation as error:
        result.add(scan_problem(target, "scan.out_of_scope", "tls", str(error)))
        result.complete = False
        return result
    sweep = sweep_of(ctx)
    material = await sweep.trust()
    runners = {e: CountingRunner(ctx, sweep, target.ip) for e in endpoints}
    enumerated = await asyncio.gather(*(_enumerate(ctx, target, e, runners[e]) for e in endpoints))
    skip_known = ctx.settings.tls.suite_enumeration == "elimination"
    vulnerability_probes = [
        probe_vulnerabilities(runners[c.endpoint], info, c, skip_known)
        for c, info in enumerated
        if info is not None
    ]
    _, mail_policies = await asyncio.gather(
        asyncio.gather(*vulnerability_probes),
        asyncio.gather(*(_mail_policy(ctx, sweep, target, c) for c, _ in enumerated)),
    )
    policy = CertificatePolicy(target.domain, utcnow(), ctx.settings.tls.expiry_warning_days)
    observations = []
    for (collected, _), mail_policy in zip(enumerated, mail_policies, strict=True):
        verdicts = _verdicts(sweep, material, collected.chains)
        observation = collected.observation(runners[collected.endpoint].jobs)
        observations.append(observation)
        result.extend(endpoint_findings(target, observation, verdicts, mail_policy or policy))
        if observation.problems:
            result.complete = False
    if web_ports(ports):
        result.extend(tls_missing_findings(target, ports, observations))
    return result
