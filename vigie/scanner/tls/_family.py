"""The TLS family for one host: probe its TLS endpoints, then judge what was seen.

Check IDs emitted here: ``scan.timeout``, ``scan.error`` (a probe that could
not answer; the family is then incomplete) and ``scan.out_of_scope``; the
``tls.*`` IDs come from ``_suites``, ``_certificates``, ``_vulns`` and
``_ports``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import TypeVar

from cryptography import x509
from sslyze.server_connectivity import ServerConnectivityInfo

from vigie.errors import ScopeViolation
from vigie.model import Family, FamilyResult, Finding, HostTarget, OpenPort, utcnow
from vigie.scanner.base import ProbeContext, run_checks, scan_problem
from vigie.scanner.tls._certificates import (
    CertificatePolicy,
    ChainVerdict,
    Trust,
    certificate_findings,
    evaluate_chain,
)
from vigie.scanner.tls._model import Endpoint, EndpointObservation
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
from vigie.scanner.tls._suites import cipher_findings, dh_findings, protocol_findings
from vigie.scanner.tls._sweep import TlsSweep, TrustMaterial, sweep_of
from vigie.scanner.tls._vulns import vulnerability_findings

T = TypeVar("T")


class _CountingRunner:
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


async def _verdicts(
    ctx: ProbeContext,
    target: HostTarget,
    sweep: TlsSweep,
    material: TrustMaterial,
    chains: Sequence[tuple[x509.Certificate, ...]],
) -> list[ChainVerdict]:
    now = utcnow()
    verdicts = [
        evaluate_chain(chain, material.anchors, sweep.intermediates, now) for chain in chains
    ]
    if any(v.trust is Trust.UNTRUSTED for v in verdicts) and await sweep.wait_for_other_harvests(
        ctx, target
    ):
        # Another host may have sent the missing intermediate meanwhile: judge again.
        verdicts = [
            evaluate_chain(v.sent, material.anchors, sweep.intermediates, now) for v in verdicts
        ]
    return verdicts


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
    runners = {e: _CountingRunner(ctx, sweep, target.ip) for e in endpoints}
    with sweep.harvesting(target):
        enumerated = await asyncio.gather(
            *(_enumerate(ctx, target, e, runners[e]) for e in endpoints)
        )
        for collected, _ in enumerated:
            sweep.learn(collected.chains)
    skip_known = ctx.settings.tls.suite_enumeration == "elimination"
    vulnerability_probes = [
        probe_vulnerabilities(runners[c.endpoint], info, c, skip_known)
        for c, info in enumerated
        if info is not None
    ]
    verdict_lists, _ = await asyncio.gather(
        asyncio.gather(*(_verdicts(ctx, target, sweep, material, c.chains) for c, _ in enumerated)),
        asyncio.gather(*vulnerability_probes),
    )
    policy = CertificatePolicy(target.domain, utcnow(), ctx.settings.tls.expiry_warning_days)
    observations = []
    for (collected, _), verdicts in zip(enumerated, verdict_lists, strict=True):
        observation = collected.observation(runners[collected.endpoint].jobs)
        observations.append(observation)
        result.extend(endpoint_findings(target, observation, verdicts, policy))
        if observation.problems:
            result.complete = False
    if web_ports(ports):
        result.extend(tls_missing_findings(target, ports, observations))
    return result
