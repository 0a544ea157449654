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
``http.exposed.phpinfo``, ``http.exposed.admin_panel``, ``http.exposed.backup``,
``http.cookie.no_samesite``, ``http.referrer_policy.unsafe``, ``http.sri.missing``,
``http.csp.weak_directives``, ``http.crossdomain.permissive``,
``http.security_txt.invalid``; and ``scan.timeout`` / ``scan.error`` for an endpoint that did not answer.

Layout: ``_model`` (the frozen :class:`HttpObservation` checks judge),
``_headers``, ``_content`` and ``_security_txt`` (pure checks), ``_html``
(what a page declares in its markup: meta policies, subresources, forms), ``_paths``
(the exposed-path list, ``vigie/data/http_paths.toml`` plus
``http.paths_file``), ``_decode`` (bounded decompression), ``_client`` (the
only module importing httpx: one pinned, bounded client per sweep) and
``_family`` (which requests to send, in which order). Other families
(mail: the MTA-STS policy fetch) reach one address through ``PinnedBackend``.
"""

from __future__ import annotations

from vigie.scanner.http._client import FetchRequest, HttpClient, http_client
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
    csp_weak_directive_findings,
    document_header_findings,
    effective_referrer_policy,
    frame_options_findings,
    hsts_findings,
    no_https_redirect_findings,
    parse_csp,
    parse_hsts,
    parse_set_cookie,
    referrer_policy_findings,
    sri_findings,
    trace_findings,
    version_findings,
)
from vigie.scanner.http._html import PageFacts, Subresource, page_facts
from vigie.scanner.http._model import Baseline, Hop, HttpObservation, PathProbe, Site
from vigie.scanner.http._paths import load_path_list, parse_path_list
from vigie.scanner.http._security_txt import (
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
    "FetchRequest",
    "Hop",
    "HttpClient",
    "HttpObservation",
    "PageFacts",
    "PathProbe",
    "PinnedBackend",
    "Site",
    "Subresource",
    "Visit",
    "check_http",
    "cookie_findings",
    "cors_findings",
    "csp_findings",
    "csp_weak_directive_findings",
    "document_header_findings",
    "effective_referrer_policy",
    "exposure_findings",
    "frame_options_findings",
    "graded_sites",
    "hsts_findings",
    "http_client",
    "listing_findings",
    "load_path_list",
    "looks_like_baseline",
    "mask_env",
    "mirror_groups",
    "no_https_redirect_findings",
    "page_facts",
    "parse_csp",
    "parse_hsts",
    "parse_path_list",
    "parse_security_txt",
    "parse_set_cookie",
    "referrer_policy_findings",
    "security_txt_findings",
    "sri_findings",
    "trace_findings",
    "version_findings",
    "visit_findings",
    "web_endpoints",
]
