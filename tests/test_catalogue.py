"""The check catalogue against the published check IDs, its texts in both languages, and the
configuration snippets, which are checked by the real servers' own parsers."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import require_program
from vigie import catalogue
from vigie.catalogue import (
    CATALOGUE,
    SNIPPET_STACKS,
    CatalogueError,
    UnknownCheckError,
    parse_family_file,
    remediation_snippets,
    spec_for,
)
from vigie.i18n import check_remediation, check_title, check_why_it_matters
from vigie.model import Family, Severity

REPO = Path(__file__).resolve().parents[1]
PUBLISHED = REPO / "tests" / "data" / "published_check_ids.txt"
SCANNER_DIR = REPO / "vigie" / "scanner"

# Published IDs whose checks are still being built; this set only ever shrinks.
NOT_YET_IMPLEMENTED: frozenset[str] = frozenset()


def published_rows() -> dict[str, str]:
    """check_id -> default severity, as the public catalogue lists them."""
    rows = {}
    for line in PUBLISHED.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            check_id, severity = line.split()
            rows[check_id] = severity
    return rows


# --- The catalogue and the published IDs ----------------------------------------------------


def test_every_published_check_is_in_the_catalogue_with_its_severity() -> None:
    # Given the public list of checks
    documented = published_rows()
    # Then the catalogue has exactly those IDs, each with the documented default severity
    missing = sorted(set(documented) - set(CATALOGUE) - NOT_YET_IMPLEMENTED)
    assert missing == [], "published, not in the catalogue"
    assert sorted(set(CATALOGUE) - set(documented)) == [], "in the catalogue, not published"
    assert sorted(NOT_YET_IMPLEMENTED & set(CATALOGUE)) == [], "implemented: drop from the list"
    wrong = {
        check_id: (CATALOGUE[check_id].severity.value, severity)
        for check_id, severity in documented.items()
        if check_id in CATALOGUE
        and severity != "from"
        and CATALOGUE[check_id].severity != Severity(severity)
    }
    assert wrong == {}, "catalogue severity differs from the published one: (catalogue, published)"


def test_catalogue_files_are_validated_naming_file_and_entry() -> None:
    # Given a family file with a check that has no French texts
    text = '["http.x"]\nseverity = "low"\n["http.x".en]\ntitle = "T"\nremediation = "R"\n'
    # Then loading it names the file and the entry
    with pytest.raises(CatalogueError, match=r"http.toml: \[http.x\] has no 'fr' texts"):
        parse_family_file(Family.HTTP, text, "http.toml")
    with pytest.raises(CatalogueError, match=r"belongs in tls\.toml"):
        parse_family_file(Family.HTTP, '["tls.x"]\nseverity = "low"\n', "http.toml")
    with pytest.raises(CatalogueError, match="bad severity"):
        parse_family_file(Family.HTTP, '["http.x"]\nseverity = "huge"\n', "http.toml")


def test_check_spec_is_frozen_and_reads_english_by_default() -> None:
    spec = spec_for("http.hsts.missing")
    assert spec.title == spec.text("title", "en")
    assert spec.text("title", "fr") != spec.title
    assert spec.text("title", "de") == spec.title
    with pytest.raises(AttributeError):
        spec.severity = Severity.LOW  # type: ignore[misc]


def test_unknown_check_ids_are_refused() -> None:
    with pytest.raises(UnknownCheckError):
        spec_for("tls.protocol.tls1_9")
    with pytest.raises(UnknownCheckError):
        check_title("no.such.check", "fr")
    with pytest.raises(UnknownCheckError):
        remediation_snippets("no.such.check")


# --- Texts ----------------------------------------------------------------------------------


def test_every_check_has_english_title_remediation_and_why_it_matters() -> None:
    problems = []
    for spec in CATALOGUE.values():
        if not spec.title.strip() or len(spec.title) > 90 or "\n" in spec.title:
            problems.append(f"{spec.check_id}: title must be one short line: {spec.title!r}")
        if spec.title.endswith("."):
            problems.append(f"{spec.check_id}: a title is not a sentence: {spec.title!r}")
        if not 80 <= len(spec.remediation) <= 700:
            problems.append(f"{spec.check_id}: remediation of {len(spec.remediation)} chars")
        if not spec.why_it_matters.strip() or len(spec.why_it_matters) > 250:
            problems.append(f"{spec.check_id}: why_it_matters must be one sentence")
        for text in (spec.title, spec.remediation, spec.why_it_matters):
            # Texts go into plain-text emails and HTML alike: no Markdown.
            if "`" in text or "**" in text:
                problems.append(f"{spec.check_id}: Markdown in {text[:40]!r}")
    assert problems == []


def test_every_check_has_a_french_translation_that_differs_from_english() -> None:
    missing = []
    for check_id, spec in CATALOGUE.items():
        for field, english, french in (
            ("title", spec.title, check_title(check_id, "fr")),
            ("remediation", spec.remediation, check_remediation(check_id, "fr")),
            ("why_it_matters", spec.why_it_matters, check_why_it_matters(check_id, "fr")),
        ):
            if not french.strip() or french == english:
                missing.append(f"{check_id} {field}")
    assert missing == [], "untranslated in vigie/data/checks/*.toml"


def test_english_texts_are_the_catalogue_texts() -> None:
    for check_id, spec in CATALOGUE.items():
        assert check_title(check_id, "en") == spec.title
        assert check_remediation(check_id, "en") == spec.remediation
        assert check_why_it_matters(check_id, "en") == spec.why_it_matters


_REFERENCES = re.compile(r"RFC \d+|CVE-\d+-\d+|TLS ?1\.[0-3]|SSL ?[23]\.0|\b\d{4,}\b")


def test_translations_keep_the_standards_and_numbers_of_the_english() -> None:
    # An RFC number, a CVE or a max-age value that differs between the two
    # languages means one of them was edited without the other.
    drift = {}
    for check_id, spec in CATALOGUE.items():
        for english, french in (
            (spec.title, check_title(check_id, "fr")),
            (spec.remediation, check_remediation(check_id, "fr")),
            (spec.why_it_matters, check_why_it_matters(check_id, "fr")),
        ):
            wanted = sorted(_REFERENCES.findall(english))
            found = sorted(_REFERENCES.findall(french))
            if wanted != found:
                drift[check_id] = (wanted, found)
    assert drift == {}


# --- Implementation -------------------------------------------------------------------------


def _string_literals_in(module: Path) -> set[str]:
    return {
        node.value
        for node in ast.walk(ast.parse(module.read_text(), filename=str(module)))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }


def _string_literals_under(directory: Path) -> set[str]:
    literals: set[str] = set()
    for module in sorted(directory.rglob("*.py")):
        literals |= _string_literals_in(module)
    return literals


def test_the_registry_and_the_catalogue_hold_the_same_checks() -> None:
    # Given the families' tables of checks (check ID -> producing functions)
    from vigie.scanner.families import check_registry

    registry = check_registry()
    # Then every catalogue ID is produced by some function, and nothing else is produced
    assert sorted(set(CATALOGUE) - set(registry)) == [], "in the catalogue, produced by nothing"
    assert sorted(set(registry) - set(CATALOGUE)) == [], "produced, not in the catalogue"
    for check_id, functions in registry.items():
        assert functions and all(callable(f) for f in functions), check_id


def test_each_producing_function_names_its_check_id() -> None:
    # Given the registry; a function is listed for an ID its source writes out (in full, or
    # through a module constant), so that the table cannot drift from the code
    import inspect

    from vigie.scanner.families import check_registry

    missing = []
    for check_id, functions in check_registry().items():
        module_sources = {inspect.getsource(inspect.getmodule(f)) for f in functions}  # type: ignore[arg-type]
        if not any(check_id in source for source in module_sources):
            missing.append(check_id)
    assert missing == []


# A citation: an RFC or a numbered clause, a named specification with its section, a CWE,
# CIS safeguard, CISA directive or OWASP test; or the plain statement that the check is vigie's
# own account (scan.*), which no standard defines.
CITATION = re.compile(
    r"RFC \d{3,4}|§\s?\d|\[MS-[A-Z0-9]+\]|CWE-\d+|CIS Controls|CISA BOD|OWASP WSTG|"
    r"NIST SP|No external\s+standard"
)


def test_each_producing_function_cites_what_it_implements() -> None:
    # Given each function the registry lists for a check ID
    import inspect

    from vigie.scanner.families import check_registry

    # Then its docstring cites the clause of the standard (or reference) it implements
    uncited = sorted(
        {
            f"{function.__module__}.{function.__qualname__}"
            for functions in check_registry().values()
            for function in functions
            if not CITATION.search(inspect.getdoc(function) or "")
        }
    )
    assert uncited == []


# --- Remediation snippets -------------------------------------------------------------------


def all_snippets(stack: str) -> Iterator[tuple[str, str]]:
    for check_id in CATALOGUE:
        snippet = remediation_snippets(check_id).get(stack)
        if snippet is not None:
            yield check_id, snippet


def test_snippets_are_keyed_by_catalogue_ids_and_known_stacks() -> None:
    raw = catalogue._all_snippets()
    assert sorted(set(raw) - set(CATALOGUE)) == []
    for check_id, by_stack in raw.items():
        assert by_stack, f"{check_id}: empty snippet table"
        assert sorted(set(by_stack) - set(SNIPPET_STACKS)) == [], check_id
        for stack, snippet in by_stack.items():
            assert snippet.strip(), f"{check_id} {stack}: empty snippet"


def test_the_common_web_stacks_are_covered_for_the_usual_fixes() -> None:
    for check_id in (
        "http.hsts.missing",
        "tls.protocol.tls1_0",
        "tls.protocol.tls1_1",
        "http.content_type_options.missing",
        "http.version_disclosed",
        "http.directory_listing",
        "http.exposed.vcs",
    ):
        assert {"nginx", "apache", "iis"} <= set(remediation_snippets(check_id)), check_id


def test_snippets_come_in_reading_order_and_are_copies() -> None:
    # Given the snippets of a check covered by several stacks
    snippets = remediation_snippets("http.version_disclosed")
    # Then they follow SNIPPET_STACKS order and changing the result changes nothing shared
    order = list(SNIPPET_STACKS)
    assert list(snippets) == sorted(snippets, key=order.index)
    snippets["nginx"] = "changed"
    assert remediation_snippets("http.version_disclosed")["nginx"] == "server_tokens off;\n"
    assert remediation_snippets("dns.ns_unresolvable") == {}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A certificate, key and DH group for snippets that name such files."""
    directory = tmp_path_factory.mktemp("tls")
    openssl = require_program("openssl")
    files = {name: directory / f"{name}.pem" for name in ("cert", "key", "dh")}
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-subj", "/CN=www.example.gov.ml", "-days", "2"),
            *("-keyout", str(files["key"]), "-out", str(files["cert"])),
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            *(openssl, "genpkey", "-genparam", "-algorithm", "DH"),
            *("-pkeyopt", "group:ffdhe2048", "-out", str(files["dh"])),
        ],
        check=True,
        capture_output=True,
    )
    return files


def _with_test_files(snippet: str, files: dict[str, Path]) -> str:
    # The snippets name the files an agency has; the parsers open them, so
    # point them at the test's own.
    replacements = (
        (r"(ssl_certificate\s+)\S+;", rf"\g<1>{files['cert']};"),
        (r"(ssl_certificate_key\s+)\S+;", rf"\g<1>{files['key']};"),
        (r"(ssl_dhparam\s+)\S+;", rf"\g<1>{files['dh']};"),
        (r"(SSLCertificateFile\s+)\S+", rf"\g<1>{files['cert']}"),
        (r"(SSLCertificateKeyFile\s+)\S+", rf"\g<1>{files['key']}"),
        (r'(DHParameters\s+)"[^"]+"', rf'\g<1>"{files["dh"]}"'),
    )
    for pattern, replacement in replacements:
        snippet = re.sub(pattern, replacement, snippet)
    return snippet


_NGINX_CONF = """\
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{}}
http {{
    access_log off;
{http_level}
    server {{
        listen 127.0.0.1:8080;
{server_level}
    }}
}}
"""


@pytest.mark.parametrize("check_id", [check_id for check_id, _ in all_snippets("nginx")])
def test_nginx_snippet_passes_nginx_config_test(
    check_id: str, tmp_path: Path, tls_files: dict[str, Path]
) -> None:
    # Given the nginx snippet inside a server block (or as a server block of its own)
    nginx = require_program("nginx")
    snippet = _with_test_files(remediation_snippets(check_id)["nginx"], tls_files)
    whole_server = snippet.lstrip().startswith("server {") or "\nserver {" in snippet
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        _NGINX_CONF.format(
            dir=tmp_path,
            http_level=snippet if whole_server else "",
            server_level="" if whole_server else snippet,
        )
    )
    # When nginx tests the configuration (it parses and loads files; it binds nothing)
    result = subprocess.run(
        [
            nginx,
            "-t",
            "-q",
            "-e",
            str(tmp_path / "error.log"),
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    # Then it accepts it
    assert result.returncode == 0, result.stderr


_APACHE_MODULES = (
    "mpm_event",
    "authz_core",
    "authz_host",
    "headers",
    "alias",
    "status",
    "socache_shmcb",
    "ssl",
)


@pytest.mark.parametrize("check_id", [check_id for check_id, _ in all_snippets("apache")])
def test_apache_snippet_passes_apache_config_test(
    check_id: str, tmp_path: Path, tls_files: dict[str, Path]
) -> None:
    # Given the Apache snippet in a main server configuration with the usual modules
    apache = require_program("apache2")
    modules = Path("/usr/lib/apache2/modules")
    load = "\n".join(f"LoadModule {m}_module {modules}/mod_{m}.so" for m in _APACHE_MODULES)
    conf = tmp_path / "httpd.conf"
    conf.write_text(
        f"ServerRoot {tmp_path}\nServerName 127.0.0.1\nPidFile {tmp_path}/httpd.pid\n"
        f"ErrorLog {tmp_path}/error.log\nDefaultRuntimeDir {tmp_path}\nListen 127.0.0.1:8080\n"
        f"{load}\n{_with_test_files(remediation_snippets(check_id)['apache'], tls_files)}"
    )
    # When Apache tests the configuration (no socket is opened)
    result = subprocess.run(
        [apache, "-t", "-f", str(conf)], capture_output=True, text=True, timeout=30
    )
    # Then it reports "Syntax OK"
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def ssh_host_key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    key = tmp_path_factory.mktemp("sshd") / "host_ed25519"
    subprocess.run(
        [require_program("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    # sshd refuses to test any configuration without its privilege separation
    # directory, which systemd creates when the ssh service runs; create it the same way.
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    return key


@pytest.mark.parametrize("check_id", [check_id for check_id, _ in all_snippets("openssh")])
def test_openssh_snippet_passes_sshd_config_test(
    check_id: str, tmp_path: Path, ssh_host_key: Path
) -> None:
    sshd = require_program("sshd")
    conf = tmp_path / "sshd_config"
    conf.write_text(remediation_snippets(check_id)["openssh"])
    result = subprocess.run(
        [sshd, "-t", "-f", str(conf), "-h", str(ssh_host_key)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("check_id", [check_id for check_id, _ in all_snippets("knot")])
def test_knot_snippet_passes_knot_config_check(check_id: str, tmp_path: Path) -> None:
    knotc = require_program("knotc")
    conf = tmp_path / "knot.conf"
    conf.write_text(remediation_snippets(check_id)["knot"])
    result = subprocess.run(
        [knotc, "-c", str(conf), "conf-check"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("check_id", [check_id for check_id, _ in all_snippets("iis")])
def test_iis_snippet_is_a_web_config_document_or_a_powershell_script(check_id: str) -> None:
    snippet = remediation_snippets(check_id)["iis"]
    if snippet.startswith("# PowerShell"):
        # PowerShell cannot run here; at least no web.config fragment hides in it
        assert "<configuration>" not in snippet
        return
    # A web.config: well-formed XML whose root is <configuration>
    root = ElementTree.fromstring(snippet)
    assert root.tag == "configuration"
    assert len(root) > 0


def test_the_generated_check_list_is_up_to_date() -> None:
    # Given the catalogue data files; when the generator runs in check mode
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "generate_checks_doc.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    # Then docs/checks.md matches them
    assert result.returncode == 0, result.stderr
