"""What the mail family observes of one domain: DNS answers and its MX hosts' SMTP/TLS.

Network side only; :mod:`vigie.scanner.mail._judge` turns the frozen
observation into findings. Every MX address passes the scope guard and is
contacted under ``ctx.connection``; TLS handshakes after STARTTLS are the
TLS family's machinery (sslyze, ``ProtocolWithOpportunisticTlsEnum.SMTP``),
on the sweep's thread pool. An MX address shared by many domains (hosted
mail) is probed once per sweep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from vigie.model import utcnow
from vigie.scanner.dns import Security, Validation, lookup_validation
from vigie.scanner.mail._fetch import PolicyFetch, fetch_policy
from vigie.scanner.mail._records import (
    StsPolicy,
    TxtVerdict,
    parse_sts_policy,
    select_sts_record,
)
from vigie.scanner.mail._smtp import SmtpDialogue, ehlo_dialogue
from vigie.scanner.probe_context import ProbeContext, cancel_tasks_of_this_loop
from vigie.scanner.resolve import Answer, Lookup, Resolution
from vigie.scanner.tls import (
    ChainVerdict,
    CountingRunner,
    Endpoint,
    EndpointObservation,
    ProbeProblem,
    StartTls,
    enumerate_by_elimination,
    evaluate_chain,
    problem_from,
    server_location,
    sweep_of,
)

SHARED_KEY = "mail"
NOT_JUDGED = Validation(Security.INSECURE, "no records to validate")
PROBE_SHARE = 0.75  # of scan.host_deadline_s, for the MX probes of one domain
DANE_PORT = 25  # RFC 7672 §2.2.3: TLSA records of an MX host live under _25._tcp


@dataclass(frozen=True)
class AddressObservation:
    """One MX address: the SMTP dialogue, and the TLS seen after STARTTLS."""

    ip: str
    in_scope: bool = True
    dialogue: SmtpDialogue = field(default_factory=SmtpDialogue)
    tls: EndpointObservation | None = None  # None: STARTTLS not offered (or not probed)
    verdicts: tuple[ChainVerdict, ...] = ()  # one per chain in ``tls.chains``


@dataclass(frozen=True)
class HostObservation:
    """One MX host: its addresses and its TLSA records (``_25._tcp.HOST``)."""

    host: str
    resolution: Resolution
    tlsa: Lookup
    addresses: tuple[AddressObservation, ...] = ()
    tlsa_security: Validation = NOT_JUDGED  # of the TLSA RRset (see ``dnssec_security``)


@dataclass(frozen=True)
class StsObservation:
    """The ``_mta-sts`` TXT record and, when it names a policy, the fetched policy."""

    txt: Lookup
    record: TxtVerdict
    fetch: PolicyFetch | None = None
    policy: StsPolicy | None = None


@dataclass(frozen=True)
class MailObservation:
    """Everything the mail checks of one receiving domain read."""

    domain: str
    mx: Lookup
    hosts: tuple[HostObservation, ...]
    sts: StsObservation
    tlsrpt: Lookup
    port: int = DANE_PORT
    skipped_hosts: tuple[str, ...] = ()  # MX hosts past ``mail.max_mx_hosts``

    mx_security: Validation = NOT_JUDGED

    @property
    def mx_secure(self) -> bool:
        """The MX RRset is DNSSEC-secure: the precondition of DANE (RFC 7672 §2.2.1)."""
        return self.mx_security.secure


# --- MTA-STS and TLS-RPT ----------------------------------------------------------------------


async def observe_sts(ctx: ProbeContext, domain: str) -> StsObservation:
    """RFC 8461 §3: the TXT record first; the policy only when the record is usable."""
    txt = await ctx.resolver.lookup(f"_mta-sts.{domain}", "TXT")
    record = select_sts_record(txt.records)
    if txt.failed or record.record is None:
        return StsObservation(txt, record)
    fetch = await fetch_policy(ctx, domain)
    policy = parse_sts_policy(fetch.text) if fetch.text is not None else None
    return StsObservation(txt, record, fetch, policy)


# --- MX hosts ---------------------------------------------------------------------------------


@dataclass
class MailSweepState:
    """MX addresses probed this sweep (``ctx.shared["mail"]``): hosted MX are shared."""

    probes: dict[tuple[str, str], asyncio.Task[AddressObservation]] = field(default_factory=dict)

    async def aclose(self) -> None:
        await cancel_tasks_of_this_loop(self.probes.values())


def _state(ctx: ProbeContext) -> MailSweepState:
    return ctx.shared_state(SHARED_KEY, MailSweepState)


async def observe_host(ctx: ProbeContext, host: str, deadline: float) -> HostObservation:
    """The addresses (capped) and TLSA records of one MX host, each address probed
    until ``deadline`` (event loop time)."""
    resolution, tlsa = await asyncio.gather(
        ctx.resolver.resolve_addresses(host),
        ctx.resolver.lookup(f"_{DANE_PORT}._tcp.{host}", "TLSA", dnssec=True),
    )
    cap = ctx.settings.mail.max_addresses_per_host
    security, addresses = await asyncio.gather(
        dnssec_security(ctx, tlsa),
        asyncio.gather(
            *(_shared_probe(ctx, host, ip, deadline) for ip in resolution.addresses[:cap])
        ),
    )
    return HostObservation(host, resolution, tlsa, tuple(addresses), security)


async def dnssec_security(ctx: ProbeContext, lookup: Lookup) -> Validation:
    """Is the RRset of ``lookup`` DNSSEC-secure (RFC 7672 §2.1, RFC 4035 §4.3)?

    The resolver's AD bit, or else vigie's own validation (the DNS family's
    ``lookup_validation``): the RRSIG over the RRset must verify with a key of
    the signing zone that the DS at its parent authenticates. Asked only of
    records (and of a SERVFAIL, which a validating resolver answers for bogus
    data); NODATA and NXDOMAIN are not judged.
    """
    if lookup.outcome is not Answer.OK and not lookup.failed:
        return NOT_JUDGED
    return await lookup_validation(ctx, lookup)


async def _shared_probe(
    ctx: ProbeContext, host: str, ip: str, deadline: float
) -> AddressObservation:
    state = _state(ctx)
    key = (host, ip)
    loop = asyncio.get_running_loop()
    task = state.probes.get(key)
    if task is None or task.get_loop() is not loop:
        task = asyncio.ensure_future(probe_address(ctx, host, ip))
        state.probes[key] = task
    # Shielded: one domain's deadline must not cancel the probe other domains await.
    try:
        async with asyncio.timeout_at(deadline):
            return await asyncio.shield(task)
    except TimeoutError:
        detail = "the SMTP and TLS probes did not finish within the mail family's budget"
        return AddressObservation(ip, dialogue=SmtpDialogue(error=detail, timed_out=True))


async def probe_address(ctx: ProbeContext, host: str, ip: str) -> AddressObservation:
    """EHLO on ``mail.smtp_port``; with STARTTLS offered, the TLS enumeration and chains."""
    if not ctx.scope.allows(ip):
        return AddressObservation(ip, in_scope=False)
    settings = ctx.settings.mail
    async with ctx.connection(ip):
        dialogue = await ehlo_dialogue(
            ip, settings.smtp_port, settings.helo_name, settings.timeout_s
        )
    if not dialogue.offers_starttls:
        return AddressObservation(ip, dialogue=dialogue)
    observation, verdicts = await _starttls_tls(ctx, host, ip)
    return AddressObservation(ip, dialogue=dialogue, tls=observation, verdicts=tuple(verdicts))


async def _starttls_tls(
    ctx: ProbeContext, host: str, ip: str
) -> tuple[EndpointObservation, Sequence[ChainVerdict]]:
    """Protocols, suites and certificate chains after STARTTLS, by the TLS family's elimination."""
    endpoint = Endpoint(ctx.settings.mail.smtp_port, StartTls.SMTP)
    sweep = sweep_of(ctx)
    runner = CountingRunner(ctx, sweep, ip)
    try:
        location, network = server_location(host, ip, endpoint, ctx.settings)
    except (UnicodeError, ValueError) as error:
        problem: ProbeProblem = problem_from("tls.location", error)
        return EndpointObservation(endpoint, speaks_tls=False, problems=(problem,)), ()
    material = await sweep.trust()
    collected, _ = await enumerate_by_elimination(runner, location, network, endpoint)
    observation = collected.observation(runner.jobs)
    now = utcnow()
    verdicts = [
        evaluate_chain(chain, material.anchors, sweep.intermediates, now)
        for chain in observation.chains
    ]
    return observation, verdicts


async def observe_domain(
    ctx: ProbeContext, domain: str, mx: Lookup, hosts: Sequence[str]
) -> MailObservation:
    """Everything about a receiving domain, gathered concurrently.

    The MX probes get ``PROBE_SHARE`` of the host deadline: a slow MX then costs its own
    verdicts (``scan.timeout``), not the DNS-side ones of the whole domain.
    """
    cap = ctx.settings.mail.max_mx_hosts
    deadline = asyncio.get_running_loop().time() + ctx.settings.scan.host_deadline_s * PROBE_SHARE
    mx_security, sts, tlsrpt, observed = await asyncio.gather(
        dnssec_security(ctx, mx),
        observe_sts(ctx, domain),
        ctx.resolver.lookup(f"_smtp._tls.{domain}", "TXT"),
        asyncio.gather(*(observe_host(ctx, host, deadline) for host in hosts[:cap])),
    )
    return MailObservation(
        domain=domain,
        mx=mx,
        hosts=tuple(observed),
        sts=sts,
        tlsrpt=tlsrpt,
        port=ctx.settings.mail.smtp_port,
        skipped_hosts=tuple(hosts[cap:]),
        mx_security=mx_security,
    )


def answered(lookup: Lookup) -> bool:
    """A definite answer (records, NODATA or NXDOMAIN), never a failure."""
    return lookup.outcome in (Answer.OK, Answer.NODATA, Answer.NXDOMAIN)
