"""Which ports get a TLS scan, and the ``tls.missing`` check.

Check IDs: ``tls.missing``.
"""

from __future__ import annotations

from collections.abc import Sequence

from vigie.model import Finding, HostTarget, OpenPort
from vigie.scanner.tls._common import tls_finding
from vigie.scanner.tls._model import Endpoint, EndpointObservation, StartTls

# HTTPS, SMTPS (submission over TLS), IMAPS, POP3S, LDAPS.
IMPLICIT_TLS_PORTS = frozenset({443, 8443, 465, 993, 995, 636})
STARTTLS_PORTS: dict[int, StartTls] = {
    25: StartTls.SMTP,
    587: StartTls.SMTP,
    143: StartTls.IMAP,
    110: StartTls.POP3,
}
# Implicit-TLS ports of mail and directory services: they never serve the web application.
NON_WEB_TLS_PORTS = frozenset({465, 993, 995, 636})
# nmap's names for plain HTTP; "" when the port stage did not identify services.
HTTP_SERVICE_NAMES = frozenset({"", "http", "http-proxy", "http-alt"})


def endpoints_to_scan(ports: Sequence[OpenPort]) -> list[Endpoint]:
    """TLS endpoints among the open ports, in port order."""
    endpoints = []
    for open_port in sorted(ports, key=lambda p: p.port):
        if open_port.tls or open_port.port in IMPLICIT_TLS_PORTS:
            endpoints.append(Endpoint(open_port.port))
        elif open_port.port in STARTTLS_PORTS:
            endpoints.append(Endpoint(open_port.port, STARTTLS_PORTS[open_port.port]))
    return endpoints


def web_ports(ports: Sequence[OpenPort]) -> list[OpenPort]:
    """Open plain-HTTP ports a web application was heard answering on, whatever their number.

    A port named "http" from its number alone (it never answered) is not a web
    application, and plain HTTP heard on 443 is one without HTTPS.
    """
    return [
        p
        for p in ports
        if not p.tls and p.service.lower() in HTTP_SERVICE_NAMES and p.banner.startswith("HTTP/")
    ]


def _serves_web(endpoint: Endpoint) -> bool:
    return endpoint.starttls is None and endpoint.port not in NON_WEB_TLS_PORTS


def tls_missing_findings(
    target: HostTarget,
    ports: Sequence[OpenPort],
    observations: Sequence[EndpointObservation],
) -> list[Finding]:
    """``tls.missing`` when HTTP answers and no web TLS port completed a handshake
    (RFC 9325 §3.2, "Strict TLS": web content is served over the ``https`` scheme of
    RFC 9110 §4.2.2).

    Mail ports do not count: STARTTLS on port 25 gives the web application no
    HTTPS. Only said when every web TLS probe finished: a timeout proves nothing.
    """
    http = web_ports(ports)
    if not http:
        return []
    web_tls = [o for o in observations if _serves_web(o.endpoint)]
    if any(o.answered_handshake or o.problems for o in web_tls):
        return []
    tried = [o.endpoint.label for o in web_tls]
    evidence = {
        "http_ports": [p.port for p in http],
        "tls_ports_tried": tried,
        "detail": "no port answered a TLS handshake" if tried else "no TLS port is open",
    }
    return [tls_finding(target, Endpoint(http[0].port), "tls.missing", evidence)]
