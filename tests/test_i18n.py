"""Language choice, catalog loading, Jinja2 integration and message extraction."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from jinja2 import DictLoader, Environment

from vigie import i18n
from vigie.i18n import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    MissingCatalogError,
    check_remediation,
    check_title,
    check_why_it_matters,
    install_jinja_i18n,
    normalise_language,
    translator,
)

REPO = Path(__file__).resolve().parents[1]
EXTRACT = REPO / "scripts" / "extract_messages.py"

# A small catalog for a domain of the tests' own: a placeholder, plural forms,
# a fuzzy entry (must not be used) and an untranslated one (falls back to English).
_TEST_PO = r"""
msgid ""
msgstr ""
"Language: fr\n"
"Plural-Forms: nplurals=2; plural=(n > 1);\n"
"Content-Type: text/plain; charset=utf-8\n"

msgid "Report for %(agency)s"
msgstr "Rapport pour %(agency)s"

msgid "%(num)s open finding"
msgid_plural "%(num)s open findings"
msgstr[0] "%(num)s constat ouvert"
msgstr[1] "%(num)s constats ouverts"

#, fuzzy
msgid "Grade"
msgstr "Note obsolète"

msgid "Overdue"
msgstr ""
"""


@pytest.fixture
def test_locale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """vigie.i18n reading a locale directory that holds the test domain besides the real ones."""
    real_root = Path(str(i18n._locale_root()))
    for po in real_root.glob("*/LC_MESSAGES/*.po"):
        target = tmp_path / po.relative_to(real_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(po.read_bytes())
    (tmp_path / "fr" / "LC_MESSAGES" / "testdomain.po").write_text(_TEST_PO, encoding="utf-8")
    monkeypatch.setattr(i18n, "_locale_root", lambda: tmp_path)
    i18n._load_translations.cache_clear()
    yield tmp_path
    i18n._load_translations.cache_clear()


# --- Choosing the language ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "fr"),
        ("", "fr"),
        ("fr", "fr"),
        ("FR", "fr"),
        ("fr_ML", "fr"),
        ("fr-FR", "fr"),
        (" en ", "en"),
        ("en-GB", "en"),
        ("en_US.UTF-8", "en"),
        ("English", "en"),
        ("Français", "fr"),
        ("francais", "fr"),
        ("de", "fr"),
        ("bm", "fr"),  # Bambara: not translated (yet), French it is
        ("e", "fr"),
    ],
)
def test_normalise_language(value: str | None, expected: str) -> None:
    assert normalise_language(value) == expected


def test_normalise_language_honours_a_supported_default_and_refuses_others() -> None:
    assert normalise_language("de", default="en") == "en"
    assert normalise_language(None, default="en") == "en"
    with pytest.raises(ValueError):
        normalise_language("fr", default="de")


def test_french_is_the_default_and_a_supported_language() -> None:
    assert DEFAULT_LANGUAGE == "fr"
    assert LANGUAGES == ("fr", "en")


# --- Check texts ----------------------------------------------------------------------------


def test_check_texts_are_french_by_default_and_english_on_request() -> None:
    # Given the agency's language as stored (possibly unset or unknown)
    # Then French is used unless English is asked for
    assert check_title("tls.protocol.tls1_0", DEFAULT_LANGUAGE) == "TLS 1.0 accepté"
    assert check_title("tls.protocol.tls1_0", "en") == "TLS 1.0 accepted"
    assert check_title("dns.dmarc.missing", "fr") == "Aucun enregistrement DMARC"
    assert check_title("dns.dmarc.missing", "en") == "No DMARC record"
    assert check_title("tls.cert.expired", "de") == "Certificat expiré"
    assert check_title("tls.cert.expired", "EN-us") == "Certificate expired"


def test_check_remediation_and_why_it_matters_in_both_languages() -> None:
    assert check_remediation("dns.axfr_open", "fr").startswith(
        "N'autorisez les transferts de zone (AXFR)"
    )
    assert check_remediation("dns.axfr_open", "en").startswith("Allow zone transfers (AXFR)")
    assert "Heartbleed" not in check_why_it_matters("tls.vuln.heartbleed", "fr")
    assert check_why_it_matters("tls.vuln.heartbleed", "fr").startswith("N'importe qui")


def test_the_report_and_email_domains_exist_for_every_translated_language() -> None:
    # (check texts are not gettext messages: both languages sit in vigie/data/checks/)
    for language in LANGUAGES:
        if language != i18n.SOURCE_LANGUAGE:
            assert {"reports", "emails"} <= set(i18n.available_domains(language))


# --- Catalog loading ------------------------------------------------------------------------


def test_any_domain_file_present_is_loaded_with_plurals_and_fallbacks(test_locale: Path) -> None:
    # Given a domain that only exists as a .po file
    french = translator("fr", "testdomain")
    # Then its translations, French plural rule (0 and 1 are singular) and fallbacks apply
    assert french.gettext("Report for %(agency)s") == "Rapport pour %(agency)s"
    assert french.ngettext("%(num)s open finding", "%(num)s open findings", 0) == (
        "%(num)s constat ouvert"
    )
    assert french.ngettext("%(num)s open finding", "%(num)s open findings", 2) == (
        "%(num)s constats ouverts"
    )
    assert french.gettext("Grade") == "Grade", "a fuzzy entry must not be used"
    assert french.gettext("Overdue") == "Overdue", "an untranslated entry falls back to English"
    assert i18n.gettext("fr", "testdomain", "Never seen") == "Never seen"
    assert i18n.ngettext("fr", "testdomain", "%(num)s open finding", "x", 1) == (
        "%(num)s constat ouvert"
    )
    assert "testdomain" in i18n.available_domains("fr")


def test_english_needs_no_catalog(test_locale: Path) -> None:
    english = translator("en", "testdomain")
    assert english.gettext("Report for %(agency)s") == "Report for %(agency)s"
    assert english.ngettext("%(num)s open finding", "%(num)s open findings", 0) == (
        "%(num)s open findings"
    )


def test_a_missing_french_catalog_is_an_error_not_silent_english(test_locale: Path) -> None:
    with pytest.raises(MissingCatalogError, match="nodomain"):
        translator("fr", "nodomain")
    # English has no catalog by design: the msgids are shown
    assert translator("en", "nodomain").gettext("Hello") == "Hello"


def test_translations_are_cached_per_language_and_domain(test_locale: Path) -> None:
    assert translator("fr", "testdomain") is translator("FR", "testdomain")
    assert translator("fr", "testdomain") is not translator("fr", "reports")
    assert translator("de", "testdomain") is translator("fr", "testdomain")


# --- Jinja2 ---------------------------------------------------------------------------------

_TEMPLATES = {
    "title.html": "<h1>{% trans %}Exposure report{% endtrans %}</h1>",
    "report.html": (
        "<p>{% trans agency=agency %}Report for {{ agency }}{% endtrans %}</p>"
        "<p>{% trans num=count %}{{ num }} open finding{% pluralize %}"
        "{{ num }} open findings{% endtrans %}</p>"
        "<p>{{ _('Overdue') }}</p>"
    ),
}


def _environment(language: str, domain: str) -> Environment:
    env = Environment(loader=DictLoader(_TEMPLATES), autoescape=True)
    install_jinja_i18n(env, language, domain)
    return env


def test_jinja_trans_block_renders_in_both_languages() -> None:
    # Given a template with a {% trans %} block
    # When it is rendered with French, then English translations installed
    french = _environment("fr", "reports").get_template("title.html").render()
    english = _environment("en", "reports").get_template("title.html").render()
    # Then each language shows its own text
    assert french == "<h1>Rapport d'exposition</h1>"
    assert english == "<h1>Exposure report</h1>"


def test_jinja_placeholders_plurals_and_escaping(test_locale: Path) -> None:
    # Given an agency name holding markup (as hostile input would)
    hostile = '<script>alert("x")</script>'
    # When a report template is rendered in French and in English
    french = _environment("fr", "testdomain").get_template("report.html")
    english = _environment("en", "testdomain").get_template("report.html")
    rendered_fr = french.render(agency=hostile, count=3)
    rendered_en = english.render(agency=hostile, count=1)
    # Then the values are escaped inside translated text, plurals follow each language
    assert "<script>" not in rendered_fr and "<script>" not in rendered_en
    assert "Rapport pour &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in rendered_fr
    assert "3 constats ouverts" in rendered_fr
    assert "<p>Overdue</p>" in rendered_fr
    assert "Report for &lt;script&gt;" in rendered_en
    assert "1 open finding<" in rendered_en


def test_installing_twice_switches_the_language() -> None:
    env = _environment("fr", "reports")
    install_jinja_i18n(env, "en", "reports")
    assert env.get_template("title.html").render() == "<h1>Exposure report</h1>"


# --- Extraction -----------------------------------------------------------------------------


def test_extract_messages_collects_templates_and_python_calls(tmp_path: Path) -> None:
    # Given a template and a module that use the project's ways to mark texts
    sources = tmp_path / "src"
    (sources / "templates").mkdir(parents=True)
    (sources / "templates" / "digest.txt").write_text(
        "{% trans %}New findings{% endtrans %}\n"
        "{% trans n=count %}{{ n }} host{% pluralize %}{{ n }} hosts{% endtrans %}\n"
        "{{ _('Resolved') }}\n"
    )
    (sources / "digest.py").write_text(
        "from vigie import i18n\n"
        "from vigie.i18n import N_\n"
        "HEADINGS = (N_('Grade'),)\n"
        "def subject(language: str, agency: str) -> str:\n"
        "    return i18n.gettext(language, 'emails', 'Security digest for %(agency)s')\n"
        "def counted(language: str, n: int) -> str:\n"
        "    return i18n.ngettext(language, 'emails', 'one finding', '%(num)s findings', n)\n"
    )
    locale_dir = tmp_path / "locale"
    command = [
        *(sys.executable, str(EXTRACT), "emails"),
        *("--source", str(sources), "--locale-dir", str(locale_dir)),
    ]
    # When the script extracts the domain
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    # Then the French file lists every text, untranslated, and check mode says so
    po = (locale_dir / "fr" / "LC_MESSAGES" / "emails.po").read_text()
    for msgid in (
        'msgid "New findings"',
        'msgid "%(n)s host"',
        'msgid_plural "%(n)s hosts"',
        'msgid "Resolved"',
        'msgid "Grade"',
        'msgid "Security digest for %(agency)s"',
        'msgid "one finding"',
        'msgid_plural "%(num)s findings"',
    ):
        assert msgid in po
    assert 'msgid "emails"' not in po, "the domain argument is not a message"
    assert "Plural-Forms: nplurals=2; plural=(n > 1);" in po
    stale = subprocess.run([*command, "--check"], capture_output=True, text=True, timeout=60)
    assert stale.returncode == 1
    assert "untranslated: New findings" in stale.stderr
