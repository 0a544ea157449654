"""Edge appliances (VPN gateways, application delivery controllers) and Exchange/OWA,
recognised from their login pages: pure functions.

Each appliance serves its login page at a fixed path (the vendors' own
documentation and their security advisories name these paths); a page counts
only when it carries the vendor's own markers as well, so that a server
answering every path with 200 is not mistaken for one. Exchange's OWA pages
carry its build number in their resource paths (``/owa/auth/15.2.1118/...``)
and in the ``X-OWA-Version`` header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vigie.scanner.software._identify import Identification, _ident


@dataclass(frozen=True)
class EdgeFingerprint:
    product: str
    paths: tuple[str, ...]  # login paths (the first is requested when probing)
    # Lower-case substrings of the page or headers: "strong" ones are the appliance's own
    # asset paths, element ids and cookie names; "weak" ones its brand names.
    strong: tuple[str, ...]
    weak: tuple[str, ...] = ()
    version: re.Pattern[str] | None = None


EDGE_DEVICES: tuple[EdgeFingerprint, ...] = (
    EdgeFingerprint(
        "fortios",
        ("/remote/login",),
        strong=(
            "fgt_lang",
            "/remote/login?lang=",
            "ftnt-fortinet-grid",
            "/sslvpn/js/login.js",
            "/remote/logincheck",
        ),
        weak=("fortinet", "forticlient", "fortigate"),
    ),
    EdgeFingerprint(
        "citrix_adc",
        ("/vpn/index.html", "/logon/LogonPoint/index.html", "/logon/LogonPoint/tmindex.html"),
        strong=(
            "/vpn/resources/",
            "/vpn/js/",
            "ctxs.",
            "logonpoint",
            "nsc_tmas",
            "citrix-transactionid",
        ),
        weak=("citrix gateway", "netscaler gateway", "citrix", "netscaler"),
    ),
    EdgeFingerprint(
        "ivanti_connect_secure",
        ("/dana-na/auth/url_default/welcome.cgi",),
        strong=("/dana-na/", "dssigninurl", "welcome.cgi?p=logo", "/dana/"),
        weak=("pulse connect secure", "ivanti connect secure", "pulse secure", "ivanti"),
    ),
    EdgeFingerprint(
        "panos",
        ("/global-protect/login.esp",),
        strong=("global-protect/portal/", "/global-protect/", "pan_gp_"),
        weak=("globalprotect portal", "globalprotect", "palo alto networks"),
        version=re.compile(r"global-protect/portal/[^\"']*\?v=(?P<version>\d+\.\d+\.\d+)"),
    ),
    EdgeFingerprint(
        "bigip",
        ("/tmui/login.jsp", "/my.policy"),
        strong=(
            "/tmui/",
            "bigipserver",
            "mrhsession",
            "lastmrh_session",
            "/public/include/js/agent_common.js",
        ),
        weak=("big-ip", "f5 networks"),
    ),
    EdgeFingerprint(
        "sonicos",
        ("/cgi-bin/welcome", "/sslvpnLogin.html"),
        strong=("sonicui", "/sslvpnlogin", "ssl-vpn web server"),
        weak=("sonicwall",),
        version=re.compile(r"SonicOS(?: Enhanced)? (?P<version>\d+\.\d+\.\d+(?:\.\d+)?)", re.I),
    ),
)
EDGE_PATHS: tuple[tuple[str, str], ...] = tuple(
    (device.product, path) for device in EDGE_DEVICES for path in device.paths[:1]
)
OWA_PATH = "/owa/auth/logon.aspx"
_OWA_BUILD = re.compile(r"/owa/(?:auth/)?(?P<build>\d{2}\.\d+\.\d+(?:\.\d+)?)/")
_OWA_MARK = re.compile(r"/owa/auth/|Outlook Web App|Outlook Web Access|X-OWA-Version", re.I)
# OWA build number -> Exchange version (major.minor): 15.2 is 2019, 15.1 2016, 15.0 2013.


def identify_edge(path: str, body: str, headers: dict[str, str]) -> list[Identification]:
    """An edge appliance's login page at ``path`` (or anywhere its markers show).

    The path asked for is blanked out of the page first and redirect targets are not
    read: a server that echoes the request ("/tmui/login.jsp not found", a redirect
    to the same path over HTTPS) proves nothing.
    """
    echoed = {path, path.split("?", 1)[0]} - {"", "/"}
    page = body[:32768]
    for text_of_path in echoed:
        page = page.replace(text_of_path, " ")
    kept = {k: v for k, v in headers.items() if k.lower() not in ("location", "content-location")}
    text = page + "\n" + "\n".join(f"{k}: {v}" for k, v in kept.items())
    lowered = text.lower()
    found: list[Identification] = []
    for device in EDGE_DEVICES:
        on_path = any(path.startswith(p) for p in device.paths)
        strong = [m for m in device.strong if m in lowered]
        weak = [m for m in device.weak if m in lowered] if on_path or strong else []
        # On its own login path one marker will do; elsewhere two of its own, one strong.
        enough = len(strong) + len(weak) >= (1 if on_path else 2)
        if not enough or not (on_path or strong):
            continue
        version = ""
        if device.version is not None:
            matched = device.version.search(text)
            version = matched["version"] if matched else ""
        seen_in = "path" if on_path else "page"
        source = f"login page {path}" if on_path else f"page {path}"
        found.append(
            _ident(
                device.product,
                version,
                seen_in,
                source,
                (strong or weak)[0],
                confidence="high" if on_path else "medium",
            )
        )
    return found


def identify_owa(path: str, body: str, headers: dict[str, str]) -> list[Identification]:
    """Exchange from OWA: ``X-OWA-Version: 15.2.1118.40`` or ``/owa/auth/15.2.1118/`` paths."""
    header = headers.get("x-owa-version", "").strip()
    if re.match(r"^\d{2}\.\d+\.\d+", header):
        return [
            _ident("exchange", header, "header", "X-OWA-Version header", f"X-OWA-Version: {header}")
        ]
    build = _OWA_BUILD.search(body)
    if build and _OWA_MARK.search(body):
        return [_ident("exchange", build["build"], "page", f"OWA page {path}", build.group(0))]
    if path.startswith("/owa") and _OWA_MARK.search(body):
        return [
            _ident("exchange", "", "path", f"OWA page {path}", "/owa/auth/", confidence="medium")
        ]
    return []
