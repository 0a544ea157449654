"""The HTTP check family: security headers, redirects, cookies, CORS, TRACE,
security.txt and exposed files, judged on what a web host really serves.

Check IDs: ``http.no_https_redirect``, ``http.hsts.missing``,
``http.hsts.short_max_age``, ``http.csp.missing``, ``http.csp.unsafe``,
``http.frame_options.missing``, ``http.content_type_options.missing``,
``http.referrer_policy.missing``, ``http.version_disclosed``,
``http.cookie.insecure``, ``http.cookie.no_httponly``, ``http.cors.permissive``,
``http.trace_enabled``, ``http.security_txt.missing``,
``http.security_txt.expired``, ``http.directory_listing``, ``http.exposed.vcs``,
``http.exposed.env_file``, ``http.exposed.server_status``,
``http.exposed.phpinfo``, ``http.exposed.admin_panel``, ``http.exposed.backup``;
and ``scan.timeout`` / ``scan.error`` for an endpoint that did not answer.

Layout: ``_model`` (the frozen :class:`HttpObservation` checks judge),
``_headers``, ``_content`` and ``_security_txt`` (pure checks), ``_paths``
(the exposed-path list, ``vigie/data/http_paths.toml`` plus
``http.paths_file``), ``_decode`` (bounded decompression), ``_client`` (the
only module importing httpx: one pinned, bounded client per sweep) and
``_family`` (which requests to send, in which order). Other families
(mail: the MTA-STS policy fetch) reach one address through ``PinnedBackend``.
"""

from __future__ import annotations

from vigie.scanner.http._content import (
    DETECTORS,
    exposure_findings,
    listing_findings,
    looks_like_baseline,
    mask_env,
)
from vigie.scanner.http._decode import BodyDecodeError, BoundedDecoder
from vigie.scanner.http._family import (
    Endpoint,
    Visit,
    check_http,
    graded_sites,
    mirror_groups,
    visit_findings,
    web_endpoints,
)
from vigie.scanner.http._headers import (
    HSTS_MIN_MAX_AGE,
    PROBE_ORIGIN,
    cookie_findings,
    cors_findings,
    csp_findings,
    document_header_findings,
    frame_options_findings,
    hsts_findings,
    no_https_redirect_findings,
    parse_csp,
    parse_hsts,
    parse_set_cookie,
    trace_findings,
    version_findings,
)
from vigie.scanner.http._model import Baseline, Hop, HttpObservation, PathProbe, Site
from vigie.scanner.http._paths import load_path_list, parse_path_list
from vigie.scanner.http._security_txt import (
    is_main_web_host,
    parse_security_txt,
    security_txt_findings,
)
from vigie.scanner.http._transport import PinnedBackend

__all__ = [
    "DETECTORS",
    "HSTS_MIN_MAX_AGE",
    "PROBE_ORIGIN",
    "Baseline",
    "BodyDecodeError",
    "BoundedDecoder",
    "Endpoint",
    "Hop",
    "HttpObservation",
    "PathProbe",
    "PinnedBackend",
    "Site",
    "Visit",
    "check_http",
    "cookie_findings",
    "cors_findings",
    "csp_findings",
    "document_header_findings",
    "exposure_findings",
    "frame_options_findings",
    "graded_sites",
    "hsts_findings",
    "is_main_web_host",
    "listing_findings",
    "load_path_list",
    "looks_like_baseline",
    "mask_env",
    "mirror_groups",
    "no_https_redirect_findings",
    "parse_csp",
    "parse_hsts",
    "parse_path_list",
    "parse_security_txt",
    "parse_set_cookie",
    "security_txt_findings",
    "trace_findings",
    "version_findings",
    "visit_findings",
    "web_endpoints",
]
