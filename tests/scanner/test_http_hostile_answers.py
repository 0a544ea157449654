"""Whole-family fuzzing: whatever a web server answers, no HTTP check raises.

The property tests feed each parser; here the answers go over a real socket to
the whole HTTP family, as a sweep meets them: status lines a parser may refuse,
headers with non-ASCII digits, control characters and repeated fields, bodies
with half-open tags, ``<meta>`` policies, forms and scripts. The family may
record a probe failure (a malformed answer is a fact about the server), but a
check that raised would be a ``scan.error`` naming ``check:...``: none may.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scanner.http_servers import HostileServers, read_request
from vigie import event_loop as vigie_loop
from vigie.config import Settings
from vigie.model import FamilyResult, HostTarget, OpenPort
from vigie.scanner.http import check_http
from vigie.scanner.probe_context import ProbeContext

ADDRESS = "127.0.61.1"
HOSTILE_TEXT = st.one_of(
    st.text(alphabet=st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=60),
    st.sampled_from(
        ["³", "max-age=³", "max-age=٣", "0x10", "-1", "1e9", "\x00", "\x7f", ";;;", ",,", "=", '"']
    ),
)
HEADER_NAMES = st.sampled_from(
    [
        "Set-Cookie",
        "Content-Security-Policy",
        "Strict-Transport-Security",
        "X-Frame-Options",
        "X-Content-Type-Options",
        "Referrer-Policy",
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Credentials",
        "Server",
        "X-Powered-By",
        "X-AspNet-Version",
        "Content-Type",
        "Location",
        "Refresh",
        "WWW-Authenticate",
    ]
)
STATUS = st.sampled_from(
    ["200 OK", "301 Moved", "302 Found", "404 Not Found", "401 Unauthorized", "500 Oops", "200"]
)
BODY = st.lists(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(
            [
                "<meta http-equiv='Content-Security-Policy' content=\"",
                "<meta name=referrer content='",
                "<meta name=generator content='WordPress ",
                "<script src='//cdn.example/",
                "<script integrity='sha256-",
                "<form action=",
                "<base href=",
                "<!--",
                "<title>Index of /</title>",
                "\"'>",
                "</head><body>",
            ]
        ),
    ),
    max_size=12,
).map("".join)


class Answers:
    """The answer the server gives to every request, swapped per example."""

    def __init__(self) -> None:
        self.raw = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    async def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        method, _, _ = await read_request(reader)
        if method:
            writer.write(self.raw)
            await writer.drain()


@pytest.fixture(scope="module")
def answers() -> Iterator[Answers]:
    servers = HostileServers()
    current = Answers()
    servers.serve(ADDRESS, 80, current.handler)
    try:
        yield current
    finally:
        servers.close()


def family_on(ip: str) -> FamilyResult:
    config = Settings.model_validate(
        {
            "scope": {"allow": [f"{ip}/32"]},
            "dns": {"resolvers": ["127.0.61.2"], "timeout_s": 0.2, "lifetime_s": 0.3},
            "http": {"connect_timeout_s": 1, "read_timeout_s": 1, "total_timeout_s": 2},
        }
    )

    async def run() -> FamilyResult:
        ctx = ProbeContext.from_settings(config)
        try:
            return await check_http(ctx, HostTarget("fuzz.vigie.test", ip), [OpenPort(80, "http")])
        finally:
            await ctx.aclose()

    return vigie_loop.run(run(), config)


@pytest.mark.network
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    status=STATUS,
    headers=st.lists(st.tuples(HEADER_NAMES, HOSTILE_TEXT), max_size=8),
    body=BODY,
)
def test_no_check_raises_whatever_the_server_answers(
    answers: Answers, status: str, headers: list[tuple[str, str]], body: str
) -> None:
    # Given a server that answers every request with this status, these headers and body
    payload = body.encode("utf-8", errors="replace")
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
    lines.append(f"Content-Length: {len(payload)}")
    answers.raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + payload
    # When the whole HTTP family meets it
    result = family_on(ADDRESS)
    # Then no check raised: problems, if any, are probe problems
    raised = [f.evidence for f in result.findings if f.discriminator.startswith("check:")]
    assert raised == []
