"""Parse and validate a registry file (CSV or YAML) into typed records.

Validation is all-or-nothing: every problem is collected with its
``file:line`` and reported together; nothing is returned to import unless the
whole file is clean.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import idna
import yaml
from email_validator import EmailNotValidError, validate_email

from vigie.errors import RegistryImportError
from vigie.model import LANGUAGES as SUPPORTED_LANGUAGES
from vigie.model import canonical_domain

REQUIRED_COLUMNS = ("agency", "agency_email", "domain")
OPTIONAL_COLUMNS = (
    "agency_code",
    "language",
    "tags",
    "operator",
    "operator_email",
    "technical_email",
    "escalation_email",
    "ministry",
    "mail_domain",
)
LIST_SEPARATOR = ";"
TRUE_WORDS = frozenset({"1", "yes", "true", "oui", "y", "x"})
FALSE_WORDS = frozenset({"", "0", "no", "false", "non", "n"})


@dataclass
class DomainEntry:
    name: str  # IDNA ASCII, lower case
    line: int
    tags: list[str] = field(default_factory=list)
    operator: str | None = None
    operator_emails: list[str] = field(default_factory=list)
    mail_domain: bool = False


@dataclass
class AgencyEntry:
    name: str
    line: int
    emails: list[str] = field(default_factory=list)
    code: str | None = None
    language: str | None = None
    ministry: str | None = None
    technical_emails: list[str] = field(default_factory=list)
    escalation_emails: list[str] = field(default_factory=list)
    domains: list[DomainEntry] = field(default_factory=list)


def normalise_domain(value: str) -> str:
    """Validate a host name and return its IDNA ASCII form; raise ValueError."""
    text = value.strip().rstrip(".")
    if not text:
        raise ValueError("empty domain")
    if text.startswith("*"):
        raise ValueError(f"{value!r}: wildcards are not applications; list the names")
    if "://" in text or "/" in text or " " in text:
        raise ValueError(f"{value!r} is not a host name (no scheme, path or spaces)")
    try:
        idna.encode(text, uts46=True)
    except idna.IDNAError as exc:
        raise ValueError(f"{value!r} is not a valid domain name ({exc})") from None
    ascii_name = canonical_domain(text)
    if "." not in ascii_name:
        raise ValueError(f"{value!r} is not a fully qualified domain name")
    if len(ascii_name) > 253:
        raise ValueError(f"{value!r} is longer than 253 characters")
    return ascii_name


def normalise_email(value: str) -> str:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"{value.strip()!r} is not a valid email address ({exc})") from None


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(LIST_SEPARATOR) if item.strip()]


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value or "").strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ValueError(f"{value!r} is not yes/no")


class _Collector:
    """Gathers problems with their location, and builds agencies consistently."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[str] = []
        self.agencies: dict[str, AgencyEntry] = {}
        self.domain_lines: dict[str, int] = {}

    def problem(self, line: int, message: str) -> None:
        self.problems.append(f"{self.path}:{line}: {message}")

    def emails(self, line: int, values: list[str], what: str) -> list[str]:
        result = []
        for value in values:
            try:
                result.append(normalise_email(value))
            except ValueError as exc:
                self.problem(line, f"{what}: {exc}")
        return result

    def language(self, line: int, value: str | None) -> str | None:
        if not value:
            return None
        language = value.strip().lower()
        if language not in SUPPORTED_LANGUAGES:
            self.problem(
                line, f"language: {value!r} is not one of {', '.join(SUPPORTED_LANGUAGES)}"
            )
            return None
        return language

    def agency(self, line: int, name: str, **attributes: Any) -> AgencyEntry | None:
        name = " ".join(name.split())
        if not name:
            self.problem(line, "agency: empty")
            return None
        entry = self.agencies.get(name.casefold())
        if entry is None:
            entry = AgencyEntry(name=name, line=line)
            self.agencies[name.casefold()] = entry
        for key, value in attributes.items():
            if value in (None, [], ""):
                continue
            current = getattr(entry, key)
            if current in (None, []):
                setattr(entry, key, value)
            elif current != value:
                self.problem(
                    line,
                    f"{key}: {value!r} contradicts {current!r} given for agency {name!r} "
                    f"on line {entry.line}",
                )
        return entry

    def domain(self, line: int, value: str) -> str | None:
        try:
            name = normalise_domain(value)
        except ValueError as exc:
            self.problem(line, f"domain: {exc}")
            return None
        if name in self.domain_lines:
            self.problem(
                line, f"domain: {name} is listed twice (first on line {self.domain_lines[name]})"
            )
            return None
        self.domain_lines[name] = line
        return name

    def result(self) -> list[AgencyEntry]:
        if self.problems:
            raise RegistryImportError(self.problems)
        return list(self.agencies.values())


def parse_registry(path: Path) -> list[AgencyEntry]:
    """Parse a registry file by its extension; raise RegistryImportError listing every problem."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise RegistryImportError([f"{path}: no such file"]) from None
    except UnicodeDecodeError as exc:
        raise RegistryImportError(
            [f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})"]
        ) from None
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return parse_yaml(text, path)
    if suffix in (".csv", ".txt", ".tsv"):
        return parse_csv(text, path)
    raise RegistryImportError([f"{path}: unknown format {suffix!r} (use .csv, .yaml or .yml)"])


def parse_csv(text: str, path: Path) -> list[AgencyEntry]:
    collector = _Collector(path)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text.split("\n", 1)[0], delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = next(reader)
    except StopIteration:
        raise RegistryImportError([f"{path}:1: empty file (a header row is required)"]) from None
    columns = [name.strip().lower() for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    unknown = [name for name in columns if name and name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if missing or unknown:
        problems = []
        if missing:
            problems.append(f"{path}:1: missing required column(s): {', '.join(missing)}")
        if unknown:
            problems.append(
                f"{path}:1: unknown column(s): {', '.join(unknown)} "
                f"(known: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})"
            )
        raise RegistryImportError(problems)
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(columns):
                collector.problem(line, f"{len(row)} fields where the header has {len(columns)}")
                continue
            _csv_row(collector, line, dict(zip(columns, row, strict=True)))
    except csv.Error as exc:
        collector.problem(reader.line_num, f"malformed CSV: {exc}")
    return collector.result()


def _csv_row(collector: _Collector, line: int, row: dict[str, str]) -> None:
    for column in REQUIRED_COLUMNS:
        if not row[column].strip():
            collector.problem(line, f"{column}: empty")
    if any(not row[column].strip() for column in REQUIRED_COLUMNS):
        return
    agency = collector.agency(
        line,
        row["agency"],
        emails=collector.emails(line, _split(row["agency_email"]), "agency_email"),
        code=(row.get("agency_code") or "").strip() or None,
        language=collector.language(line, row.get("language")),
        ministry=(row.get("ministry") or "").strip() or None,
        technical_emails=collector.emails(
            line, _split(row.get("technical_email")), "technical_email"
        ),
        escalation_emails=collector.emails(
            line, _split(row.get("escalation_email")), "escalation_email"
        ),
    )
    name = collector.domain(line, row["domain"])
    try:
        mail_domain = _boolean(row.get("mail_domain"))
    except ValueError as exc:
        collector.problem(line, f"mail_domain: {exc}")
        mail_domain = False
    if agency is None or name is None:
        return
    agency.domains.append(
        DomainEntry(
            name=name,
            line=line,
            tags=_split(row.get("tags")),
            operator=(row.get("operator") or "").strip() or None,
            operator_emails=collector.emails(
                line, _split(row.get("operator_email")), "operator_email"
            ),
            mail_domain=mail_domain,
        )
    )


# --- YAML -----------------------------------------------------------------


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _mapping(node: yaml.Node) -> dict[str, yaml.Node] | None:
    if not isinstance(node, yaml.MappingNode):
        return None
    return {str(key.value): value for key, value in node.value}


def _scalar(node: yaml.Node | None) -> str | None:
    if node is None:
        return None
    if isinstance(node, yaml.ScalarNode):
        return str(node.value)
    return None


def _strings(collector: _Collector, node: yaml.Node | None, what: str) -> list[str]:
    if node is None:
        return []
    if isinstance(node, yaml.ScalarNode):
        return _split(str(node.value))
    if isinstance(node, yaml.SequenceNode):
        values = []
        for item in node.value:
            text = _scalar(item)
            if text is None:
                collector.problem(_line(item), f"{what}: expected text")
            else:
                values.append(text)
        return values
    collector.problem(_line(node), f"{what}: expected a list")
    return []


AGENCY_KEYS = frozenset(
    {
        "name",
        "code",
        "language",
        "emails",
        "email",
        "ministry",
        "technical_emails",
        "escalation_emails",
        "domains",
        "tags",
    }
)
DOMAIN_KEYS = frozenset(
    {"name", "tags", "operator", "operator_email", "operator_emails", "mail_domain"}
)


def parse_yaml(text: str, path: Path) -> list[AgencyEntry]:
    collector = _Collector(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        raise RegistryImportError(
            [f"{path}:{line}: malformed YAML: {getattr(exc, 'problem', exc)}"]
        ) from None
    top = _mapping(root) if root is not None else None
    agencies_node = top.get("agencies") if top else None
    if not isinstance(agencies_node, yaml.SequenceNode):
        raise RegistryImportError([f"{path}:1: expected a top-level 'agencies:' list"])
    for agency_node in agencies_node.value:
        _yaml_agency(collector, agency_node)
    return collector.result()


def _yaml_agency(collector: _Collector, node: yaml.Node) -> None:
    line = _line(node)
    fields = _mapping(node)
    if fields is None:
        collector.problem(line, "agency: expected a mapping with name, emails, domains")
        return
    for key in fields:
        if key not in AGENCY_KEYS:
            collector.problem(line, f"agency: unknown key {key!r}")
    name = _scalar(fields.get("name"))
    emails = _strings(collector, fields.get("emails") or fields.get("email"), "emails")
    if not name:
        collector.problem(line, "agency: 'name' is required")
        return
    if not emails:
        collector.problem(line, f"agency {name!r}: 'emails' is required")
    agency = collector.agency(
        line,
        name,
        emails=collector.emails(line, emails, "emails"),
        code=_scalar(fields.get("code")),
        language=collector.language(line, _scalar(fields.get("language"))),
        ministry=_scalar(fields.get("ministry")),
        technical_emails=collector.emails(
            line,
            _strings(collector, fields.get("technical_emails"), "technical_emails"),
            "technical_emails",
        ),
        escalation_emails=collector.emails(
            line,
            _strings(collector, fields.get("escalation_emails"), "escalation_emails"),
            "escalation_emails",
        ),
    )
    domains = fields.get("domains")
    if not isinstance(domains, yaml.SequenceNode) or not domains.value:
        collector.problem(line, f"agency {name!r}: 'domains' must be a non-empty list")
        return
    for domain_node in domains.value:
        entry = _yaml_domain(collector, domain_node)
        if entry is not None and agency is not None:
            agency.domains.append(entry)


def _yaml_domain(collector: _Collector, node: yaml.Node) -> DomainEntry | None:
    line = _line(node)
    if isinstance(node, yaml.ScalarNode):
        name = collector.domain(line, str(node.value))
        return DomainEntry(name=name, line=line) if name else None
    fields = _mapping(node)
    if fields is None:
        collector.problem(line, "domain: expected a name or a mapping")
        return None
    for key in fields:
        if key not in DOMAIN_KEYS:
            collector.problem(line, f"domain: unknown key {key!r}")
    raw_name = _scalar(fields.get("name"))
    if not raw_name:
        collector.problem(line, "domain: 'name' is required")
        return None
    name = collector.domain(line, raw_name)
    try:
        mail_domain = _boolean(_scalar(fields.get("mail_domain")) or "")
    except ValueError as exc:
        collector.problem(line, f"mail_domain: {exc}")
        mail_domain = False
    operator_emails = _strings(
        collector, fields.get("operator_emails") or fields.get("operator_email"), "operator_email"
    )
    if name is None:
        return None
    return DomainEntry(
        name=name,
        line=line,
        tags=_strings(collector, fields.get("tags"), "tags"),
        operator=_scalar(fields.get("operator")),
        operator_emails=collector.emails(line, operator_emails, "operator_email"),
        mail_domain=mail_domain,
    )
