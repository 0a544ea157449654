"""What a served body is: exposed files, admin panels, directory indexes, soft-404 pages.

Check IDs: ``http.directory_listing``, ``http.exposed.vcs``,
``http.exposed.env_file``, ``http.exposed.server_status``,
``http.exposed.phpinfo``, ``http.exposed.admin_panel``, ``http.exposed.backup``,
``http.crossdomain.permissive``.

Every detector matches content; a status code alone proves nothing, because
many servers answer 200 to every path. A response that looks like the
endpoint's answer to a random path (its soft-404) is ignored.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from xml.etree import ElementTree

from vigie.model import Finding
from vigie.scanner.http._model import Baseline, HttpObservation, PathProbe, Site, truncate


@dataclass(frozen=True)
class Match:
    """What a detector recognised, and a snippet safe to put in evidence."""

    what: str
    snippet: str


Detector = Callable[[HttpObservation], Match | None]

SUCCESS = frozenset({200, 206})
SNIPPET_LINES = 8


def looks_like_html(response: HttpObservation) -> bool:
    """The body is markup (a page, not a file), whatever Content-Type claims."""
    return response.text[:256].lstrip().startswith("<")


def _first_line(text: str) -> str:
    return truncate(text.strip().splitlines()[0] if text.strip() else "", 160)


# --- version control ----------------------------------------------------------------


def detect_git_head(response: HttpObservation) -> Match | None:
    text = response.text.strip()
    if response.status in SUCCESS and (
        text.startswith("ref: refs/") or re.fullmatch(r"[0-9a-f]{40}", text)
    ):
        return Match("Git HEAD file", _first_line(text))
    return None


def detect_git_config(response: HttpObservation) -> Match | None:
    text = response.text
    if response.status in SUCCESS and "[core]" in text and "repositoryformatversion" in text:
        # Only the [core] marker: remote URLs may carry credentials.
        version = re.search(r"repositoryformatversion\s*=\s*\d+", text)
        return Match("Git config file", "[core] " + (version.group(0) if version else ""))
    return None


def detect_svn_entries(response: HttpObservation) -> Match | None:
    text = response.text
    if response.status not in SUCCESS or looks_like_html(response):
        return None
    # Subversion ≥ 1.7 writes just the format number; older ones a "dir" record after it.
    if re.fullmatch(r"\s*\d{1,2}\s*", text) or re.match(r"\d{1,2}\n\n?dir\n", text):
        return Match("Subversion entries file", _first_line(text))
    return None


def detect_sqlite(response: HttpObservation) -> Match | None:
    if response.status in SUCCESS and response.body.startswith(b"SQLite format 3\x00"):
        return Match("SQLite database (Subversion wc.db)", "SQLite format 3")
    return None


# --- configuration and status pages -------------------------------------------------

_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=(.*)$")


def mask_env(text: str) -> str:
    """The KEY=VALUE lines of an env file with every value masked."""
    masked = []
    for line in text.splitlines():
        match = _ENV_LINE.match(line)
        if match:
            masked.append(f"{match.group(1)}=<{len(match.group(2).strip())} chars masked>")
        if len(masked) >= SNIPPET_LINES:
            break
    return truncate("\n".join(masked))


def detect_env_file(response: HttpObservation) -> Match | None:
    if response.status not in SUCCESS or looks_like_html(response):
        return None
    lines = [
        line
        for line in response.text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assignments = [line for line in lines if _ENV_LINE.match(line)]
    if len(assignments) >= 2 and len(assignments) >= 0.6 * len(lines):
        return Match(f"environment file ({len(assignments)} variables)", mask_env(response.text))
    return None


_STATUS_MARKERS = (
    re.compile(r"Apache Server Status for[^<\n]{0,80}"),
    re.compile(r"Apache Server Information[^<\n]{0,40}"),
    re.compile(r"Active connections:\s*\d+"),
)


def detect_server_status(response: HttpObservation) -> Match | None:
    if response.status not in SUCCESS:
        return None
    text = response.text
    for marker in _STATUS_MARKERS:
        found = marker.search(text)
        if found is None:
            continue
        if marker.pattern.startswith("Active") and "server accepts handled requests" not in text:
            continue
        return Match("server status page", truncate(found.group(0).strip(), 160))
    return None


# Besides the version line, something only phpinfo() prints.
_PHPINFO_MARKERS = (
    "phpinfo()",
    'class="e"',
    "PHP License",
    "Zend Engine",
    "PHP Credits",
    "Loaded Configuration File",
    "Configuration File (php.ini) Path",
)


def detect_phpinfo(response: HttpObservation) -> Match | None:
    text = response.text
    version = re.search(r"PHP Version\s*(?:=>\s*|</[a-z0-9]+>\s*<[^>]+>\s*)?\d[\w.+~-]*", text)
    if response.status not in SUCCESS or version is None:
        return None
    if any(marker in text for marker in _PHPINFO_MARKERS):
        return Match("phpinfo() output", truncate(re.sub(r"<[^>]+>", " ", version.group(0)), 120))
    return None


# --- admin panels -------------------------------------------------------------------

_TITLE = re.compile(r"<title>([^<]{0,120})</title>", re.IGNORECASE)


def _title(text: str) -> str:
    found = _TITLE.search(text)
    return found.group(1).strip() if found else ""


def detect_admin_panel(response: HttpObservation) -> Match | None:
    """phpMyAdmin, Adminer or the Tomcat managers (their login or 401 pages count)."""
    text = response.text
    realm = response.header("www-authenticate") or ""
    title = _title(text)
    if response.status in SUCCESS:
        if "phpMyAdmin" in text and ("pma_" in text or "phpMyAdmin" in title):
            return Match("phpMyAdmin", truncate(title or "phpMyAdmin", 160))
        if "Adminer" in text and ("auth[driver]" in text or "adminer.org" in text):
            return Match("Adminer", truncate(title or "Adminer", 160))
        if "Tomcat Web Application Manager" in text or "Tomcat Virtual Host Manager" in text:
            return Match("Tomcat manager", truncate(title or "Tomcat manager", 160))
    if response.status in (200, 401, 403) and (
        "Tomcat Manager Application" in realm or "Tomcat Host Manager" in realm
    ):
        return Match("Tomcat manager (login)", truncate(f"WWW-Authenticate: {realm}", 160))
    if response.status == 401 and "tomcat-users.xml" in text and "manager-gui" in text:
        return Match("Tomcat manager (login)", truncate(title or "401 Unauthorized", 160))
    return None


# --- backups and dumps --------------------------------------------------------------

_ARCHIVE_MAGIC = (
    (b"PK\x03\x04", "zip archive"),
    (b"PK\x05\x06", "zip archive (empty)"),
    (b"\x1f\x8b", "gzip data"),
    (b"BZh", "bzip2 data"),
    (b"\xfd7zXZ\x00", "xz data"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"Rar!\x1a\x07", "RAR archive"),
)
_DUMP_HEADER = re.compile(
    r"^-- (?:MySQL dump|MariaDB dump|PostgreSQL database dump|Dumping data)[^\n]{0,80}|mysqldump[^\n]{0,80}",
    re.MULTILINE,
)
# Indentation is spaces and tabs: "\s*" would run across line breaks from every line
# start, quadratic on a body of blank lines (a minute for 64 KiB of them).
_SQL_STATEMENT = re.compile(
    r"^[ \t]*(CREATE TABLE|INSERT INTO)\b[^\n]{0,100}", re.MULTILINE | re.IGNORECASE
)


def detect_archive(response: HttpObservation) -> Match | None:
    if response.status not in SUCCESS:
        return None
    body = response.body
    for magic, name in _ARCHIVE_MAGIC:
        if body.startswith(magic):
            return Match(name, f"{name}: starts with {magic!r}")
    if body[257:262] == b"ustar":
        return Match("tar archive", "tar archive: 'ustar' at offset 257")
    return None


def _masked_statement(line: str) -> str:
    # Row values can be personal data: keep the statement, hide the values.
    head, sep, _ = line.partition("VALUES")
    if not sep:
        head, sep, _ = line.partition("values")
    return truncate(head.strip() + (" VALUES <masked>" if sep else ""), 160)


def detect_sql_dump(response: HttpObservation) -> Match | None:
    if response.status not in SUCCESS or looks_like_html(response):
        return None
    text = response.text
    header = _DUMP_HEADER.search(text)
    if header is not None:
        return Match("SQL dump", truncate(header.group(0).strip(), 160))
    statement = _SQL_STATEMENT.search(text)
    if statement is not None:
        return Match("SQL dump", _masked_statement(statement.group(0)))
    return None


def detect_backup_file(response: HttpObservation) -> Match | None:
    """A ``.bak`` copy: an archive, a dump, or server-side source served as text."""
    found = detect_archive(response) or detect_sql_dump(response)
    if found is not None:
        return found
    if response.status in SUCCESS and response.text.lstrip().startswith("<?php"):
        return Match("PHP source code", "<?php …")
    return None


# --- directory listing --------------------------------------------------------------

_LISTING = re.compile(
    r"<title>\s*(?:Index of /|Directory listing for \[?/|Directory: /)[^<]{0,120}</title>"
    r"|<h1>\s*Index of /[^<]{0,120}</h1>",
    re.IGNORECASE,
)


def detect_directory_listing(response: HttpObservation) -> Match | None:
    """nginx/Apache/lighttpd autoindex, Python's http.server, IIS directory browsing."""
    if response.status not in SUCCESS:
        return None
    text = response.text
    found = _LISTING.search(text)
    if found is not None:
        return Match(
            "directory index", truncate(re.sub(r"<[^>]+>", "", found.group(0)).strip(), 160)
        )
    if "[To Parent Directory]" in text:
        return Match("directory index (IIS)", "[To Parent Directory]")
    return None


# --- Flash and Silverlight cross-domain policies ------------------------------------

# The policies are short: a longer body is not one (and is not parsed whole).
POLICY_XML_BYTES = 65_536


def _policy_root(response: HttpObservation, root_tag: str) -> ElementTree.Element | None:
    """The parsed policy document when ``response`` is one (root element ``root_tag``)."""
    body = response.body[:POLICY_XML_BYTES]
    if response.status not in SUCCESS or b"<!ENTITY" in body.upper():
        return None  # entity declarations are never needed by a policy: not expanded
    try:
        root = ElementTree.fromstring(body)
    except (ElementTree.ParseError, ValueError):
        return None
    return root if root.tag == root_tag else None


def detect_crossdomain_xml(response: HttpObservation) -> Match | None:
    """Adobe cross-domain policy file specification (``/crossdomain.xml``):
    ``<allow-access-from domain="*">`` (or ``allow-http-request-headers-from``)
    lets Flash content from any site read this site's responses with the user's cookies."""
    root = _policy_root(response, "cross-domain-policy")
    if root is None:
        return None
    for tag in ("allow-access-from", "allow-http-request-headers-from"):
        for element in root.iter(tag):
            if element.get("domain", "").strip() == "*":
                return Match("cross-domain policy granting any domain", f'<{tag} domain="*">')
    return None


def detect_clientaccesspolicy_xml(response: HttpObservation) -> Match | None:
    """Silverlight client access policy (``/clientaccesspolicy.xml``, "Making a Service
    Available Across Domain Boundaries"): ``<domain uri="*"/>`` inside ``<allow-from>``
    grants every site (``http://*`` and ``https://*`` every site of that scheme)."""
    root = _policy_root(response, "access-policy")
    if root is None:
        return None
    for allow in root.iter("allow-from"):
        for domain in allow.iter("domain"):
            uri = domain.get("uri", "").strip()
            if uri in ("*", "http://*", "https://*"):
                return Match("client access policy granting any domain", f'<domain uri="{uri}"/>')
    return None


DETECTORS: dict[str, Detector] = {
    "git_head": detect_git_head,
    "git_config": detect_git_config,
    "svn_entries": detect_svn_entries,
    "sqlite": detect_sqlite,
    "env_file": detect_env_file,
    "server_status": detect_server_status,
    "phpinfo": detect_phpinfo,
    "admin_panel": detect_admin_panel,
    "archive": detect_archive,
    "sql_dump": detect_sql_dump,
    "backup_file": detect_backup_file,
    "directory_listing": detect_directory_listing,
    "crossdomain_xml": detect_crossdomain_xml,
    "clientaccesspolicy_xml": detect_clientaccesspolicy_xml,
}

# --- soft-404 -----------------------------------------------------------------------

SIMILARITY_CHARS = 2048
SIMILAR_RATIO = 0.9


def _normalised(response: HttpObservation, token: str) -> str:
    text = response.text[: SIMILARITY_CHARS * 2].replace(response.path, "")
    return text.replace(token, "") if token else text


def looks_like_baseline(response: HttpObservation, baseline: Baseline) -> bool:
    """The response resembles what the endpoint serves for a path that cannot exist."""
    for sample in baseline.responses:
        if sample.status != response.status:
            continue
        ours = _normalised(response, baseline.token)
        theirs = _normalised(sample, baseline.token)
        if ours == theirs:
            return True
        longest = max(len(ours), len(theirs), 1)
        if abs(len(ours) - len(theirs)) / longest > 0.1:
            continue
        matcher = difflib.SequenceMatcher(
            None, ours[:SIMILARITY_CHARS], theirs[:SIMILARITY_CHARS], autojunk=False
        )
        if matcher.ratio() >= SIMILAR_RATIO:
            return True
    return False


def exposure_findings(
    site: Site, probe: PathProbe, response: HttpObservation, baseline: Baseline
) -> list[Finding]:
    """The finding ``probe`` proves when its detector recognises ``response``.

    What each recognised file proves, and the reference that says it must not be served:

    - ``http.exposed.vcs``: a Git object store (gitrepository-layout(5): ``HEAD``,
      ``config``, ``index``) or Subversion working copy (``wc.db``); CWE-527;
    - ``http.exposed.env_file``: a dotenv file of ``KEY=value`` secrets; CWE-538;
    - ``http.exposed.server_status``: Apache mod_status or nginx stub_status pages
      (their manuals restrict them to the administrators' addresses); CWE-497;
    - ``http.exposed.phpinfo``: the PHP manual's phpinfo() output; CWE-497;
    - ``http.exposed.admin_panel``: OWASP WSTG-CONF-05 (administrative interfaces);
    - ``http.exposed.backup``: an archive or SQL dump; CWE-530, OWASP WSTG-CONF-04;
    - ``http.directory_listing``: an auto-generated index; CWE-548;
    - ``http.crossdomain.permissive``: the Adobe Cross Domain Policy File
      Specification (``<allow-access-from domain="*">``) and Silverlight's
      ``clientaccesspolicy.xml`` (``<domain uri="*">``) grant every site.

    A detector that recognises the same content on the baseline (a catch-all
    answer) proves nothing about the path.
    """
    detector = DETECTORS[probe.detector]
    found = detector(response)
    if found is None or looks_like_baseline(response, baseline):
        return []
    # A catch-all that serves the same recognised content everywhere proves nothing about this path.
    if any(detector(sample) is not None for sample in baseline.responses):
        return []
    evidence = response.evidence(["content-type", "content-length", "www-authenticate"])
    evidence["matched"] = found.what
    evidence["snippet"] = found.snippet
    return [site.finding(probe.check, evidence, discriminator=probe.path)]


def listing_findings(site: Site, response: HttpObservation) -> list[Finding]:
    """``http.directory_listing`` for a page (the site's own front page, for instance):
    an auto-generated index of files (CWE-548), as Apache mod_autoindex and nginx
    autoindex write them."""
    found = detect_directory_listing(response)
    if found is None:
        return []
    evidence = response.evidence(["content-type"])
    evidence["matched"] = found.what
    evidence["snippet"] = found.snippet
    return [site.finding("http.directory_listing", evidence, discriminator=response.path)]
