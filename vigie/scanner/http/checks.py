"""The HTTP family's check IDs, each with the function(s) that produce it.

Exposed paths are proven by a detector named in the path list
(``vigie/data/http_paths.toml``) and reported by ``exposure_findings``.
"""

from __future__ import annotations

from vigie.scanner.checks_table import ChecksTable
from vigie.scanner.http import _content, _headers, _security_txt

_EXPOSURE = (_content.exposure_findings,)

CHECKS: ChecksTable = {
    "http.no_https_redirect": (_headers.no_https_redirect_findings,),
    "http.hsts.missing": (_headers.hsts_findings,),
    "http.hsts.short_max_age": (_headers.hsts_findings,),
    "http.csp.missing": (_headers.csp_findings,),
    "http.csp.unsafe": (_headers.csp_findings,),
    "http.csp.weak_directives": (_headers.csp_weak_directive_findings,),
    "http.frame_options.missing": (_headers.frame_options_findings,),
    "http.content_type_options.missing": (_headers.content_type_options_findings,),
    "http.referrer_policy.missing": (_headers.referrer_policy_findings,),
    "http.referrer_policy.unsafe": (_headers.referrer_policy_findings,),
    "http.version_disclosed": (_headers.version_findings,),
    "http.cookie.insecure": (_headers.cookie_findings,),
    "http.cookie.no_httponly": (_headers.cookie_findings,),
    "http.cookie.no_samesite": (_headers.cookie_findings,),
    "http.cors.permissive": (_headers.cors_findings,),
    "http.trace_enabled": (_headers.trace_findings,),
    "http.sri.missing": (_headers.sri_findings,),
    "http.security_txt.missing": (_security_txt.security_txt_findings,),
    "http.security_txt.expired": (_security_txt.security_txt_findings,),
    "http.security_txt.invalid": (_security_txt.security_txt_findings,),
    "http.directory_listing": (_content.listing_findings, *_EXPOSURE),
    "http.exposed.vcs": _EXPOSURE,
    "http.exposed.env_file": _EXPOSURE,
    "http.exposed.server_status": _EXPOSURE,
    "http.exposed.phpinfo": _EXPOSURE,
    "http.exposed.admin_panel": _EXPOSURE,
    "http.exposed.backup": _EXPOSURE,
    "http.crossdomain.permissive": _EXPOSURE,
}
