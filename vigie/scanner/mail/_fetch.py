"""Fetching an MTA-STS policy the way a sending MTA does (RFC 8461 §3.3).

``https://mta-sts.DOMAIN/.well-known/mta-sts.txt`` over HTTPS with a
certificate valid for ``mta-sts.DOMAIN`` that chains to a trusted root
(the system's, plus ``tls.extra_ca_file``), no redirects followed, HTTP 200,
``text/plain``. The policy host's addresses come from the configured
resolvers and each passes the scope guard; the connection goes to that
address only (SNI and ``Host`` stay the name).
"""

from __future__ import annotations

import functools
import ssl
from dataclasses import dataclass
from pathlib import Path

import httpcore

from vigie.scanner.http import PinnedBackend
from vigie.scanner.probe_context import ProbeContext
from vigie.scanner.resolve import Answer

POLICY_PATH = "/.well-known/mta-sts.txt"
MAX_ADDRESSES = 2  # policy host addresses tried before giving up


@dataclass(frozen=True)
class PolicyFetch:
    """The policy text, or why a sender could not get it."""

    url: str
    text: str | None = None
    problem: str = ""  # set when a sender would find no valid policy
    address: str | None = None
    timed_out: bool = False  # no verdict: the probe itself did not finish
    out_of_scope: tuple[str, ...] = ()  # addresses the scope guard refused


@functools.lru_cache(maxsize=4)
def verifying_context(extra_ca_file: Path | None, _mtime: float) -> ssl.SSLContext:
    """The system's trust store plus ``extra_ca_file``, with host name checks (RFC 6125)."""
    context = ssl.create_default_context()
    if extra_ca_file is not None:
        context.load_verify_locations(cafile=str(extra_ca_file))
    return context


def _context(ctx: ProbeContext) -> ssl.SSLContext:
    extra = ctx.settings.tls.extra_ca_file
    return verifying_context(extra, extra.stat().st_mtime if extra is not None else 0.0)


async def fetch_policy(ctx: ProbeContext, domain: str) -> PolicyFetch:
    """GET the policy from ``mta-sts.<domain>`` (bounded by ``mail.timeout_s`` and size)."""
    host = f"mta-sts.{domain}"
    url = f"https://{host}{POLICY_PATH}"
    resolution = await ctx.resolver.resolve_addresses(host)
    if resolution.failed:
        return PolicyFetch(url, timed_out=resolution.outcome is Answer.TIMEOUT, problem="")
    if not resolution.addresses:
        return PolicyFetch(url, problem=f"{host} does not resolve ({resolution.outcome.value})")
    refused = tuple(a for a in resolution.addresses if not ctx.scope.allows(a))
    allowed = [a for a in resolution.addresses if ctx.scope.allows(a)][:MAX_ADDRESSES]
    if not allowed:
        return PolicyFetch(url, out_of_scope=refused)
    last = PolicyFetch(url)
    for address in allowed:
        last = await _fetch_from(ctx, url, host, address)
        if last.text is not None or not last.timed_out:
            return last
    return last


async def _fetch_from(ctx: ProbeContext, url: str, host: str, address: str) -> PolicyFetch:
    settings = ctx.settings.mail
    timeout = settings.timeout_s
    pool = httpcore.AsyncConnectionPool(
        ssl_context=_context(ctx),
        max_connections=1,
        retries=0,
        network_backend=PinnedBackend(address, ctx.scope),
    )
    extensions = {
        "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
    }
    headers = [
        (b"Host", host.encode("idna")),
        (b"User-Agent", ctx.settings.http.user_agent.encode()),
    ]
    try:
        async with (
            ctx.connection(address),
            pool,
            pool.stream("GET", url, headers=headers, extensions=extensions) as response,
        ):
            body = bytearray()
            async for chunk in response.aiter_stream():
                body += chunk
                if len(body) > settings.mta_sts_max_bytes:
                    return PolicyFetch(
                        url,
                        problem=f"policy larger than {settings.mta_sts_max_bytes} bytes",
                        address=address,
                    )
            status = response.status
            content_type = _header(response.headers, b"content-type")
    except httpcore.TimeoutException as exc:
        return PolicyFetch(url, address=address, timed_out=True, problem=f"timeout: {exc}")
    except (httpcore.ConnectError, httpcore.NetworkError, httpcore.ProtocolError, OSError) as exc:
        return PolicyFetch(url, address=address, problem=_describe(exc))
    if status != 200:
        # RFC 8461 §3.3: redirects are not followed; anything but 200 is no policy.
        return PolicyFetch(url, address=address, problem=f"HTTP {status} (not 200)")
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "text/plain":
        return PolicyFetch(
            url, address=address, problem=f"served as {media or 'no media type'}, not text/plain"
        )
    return PolicyFetch(url, text=bytes(body).decode("utf-8", errors="replace"), address=address)


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return ""


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        return f"invalid HTTPS certificate: {text}"[:400]
    return f"cannot fetch the policy over HTTPS: {text}"[:400]
