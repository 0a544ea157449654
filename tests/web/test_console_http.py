"""vigie's own HTTP checks pointed at the console, served by uvicorn over TLS on loopback.

The oracle is the http family as it judges any agency's site (HSTS, CSP, framing,
nosniff, Referrer-Policy, cookies, version disclosure, exposed files, security.txt):
the console must leave nothing above info, and grade A+ under the grading policy.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import trustme

from tests.web.conftest import World
from tests.web.servers import serve_console
from vigie import event_loop
from vigie.catalogue import spec_for
from vigie.config import Settings
from vigie.grading import OpenCheck, grade_checks, policies_for
from vigie.model import FamilyResult, HostTarget, OpenPort, Severity
from vigie.scanner.http import check_http
from vigie.scanner.probe_context import ProbeContext
from vigie.web import create_app

HOST = "127.0.21.10"
NAME = "console.vigie-web.test"


@pytest.mark.network
def test_the_console_passes_vigies_own_http_checks(world: World, tmp_path: Path) -> None:
    # Given the console on HTTPS (a trustme certificate for its name) on 127.0.21.10:443
    ca = trustme.CA()
    cert = ca.issue_cert(NAME)
    ca_file, cert_file, key_file = tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    cert.private_key_and_cert_chain_pem.write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    app = create_app(world.settings)
    scanner_settings = Settings.model_validate(
        {
            "scope": {"allow": ["127.0.21.0/24"]},
            "tls": {"extra_ca_file": str(ca_file)},
            "http": {"connect_timeout_s": 3, "read_timeout_s": 5, "total_timeout_s": 20},
        }
    )

    async def scan() -> FamilyResult:
        ctx = ProbeContext.from_settings(scanner_settings)
        try:
            return await check_http(ctx, HostTarget(NAME, HOST), [OpenPort(443, "https", tls=True)])
        finally:
            await ctx.aclose()

    with serve_console(app, HOST, 443, ssl_certfile=str(cert_file), ssl_keyfile=str(key_file)):
        # When vigie's http family checks it as it checks any agency's site
        result = event_loop.run(scan(), scanner_settings)
    # Then the scan completed and found nothing above info
    assert result.complete, result.findings
    severities = {f.check_id: f.severity or spec_for(f.check_id).severity for f in result.findings}
    assert [c for c, s in severities.items() if s > Severity.INFO] == []
    # And the grading policy gives it A+
    policy = policies_for(scanner_settings).select(None, date.today())
    grade = grade_checks((OpenCheck(c, s) for c, s in severities.items()), policy)
    assert grade.letter == "A+"
