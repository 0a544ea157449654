"""Settings: one TOML file plus ``VIGIE_<SECTION>_<KEY>`` environment overrides.

Validated once at start. Unknown keys, bad values, bad CIDRs and bad cron
expressions raise :class:`ConfigError` naming the key. Secrets (``*.password``)
are read only from the environment and never printed unmasked.
"""

from __future__ import annotations

import ipaddress
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from croniter import croniter
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from vigie.errors import ConfigError
from vigie.model import Severity

DEFAULT_CONFIG_FILE = "vigie.toml"
ENV_PREFIX = "VIGIE_"

# Keys whose values are secrets: only the environment may set them.
SECRET_KEYS = frozenset(
    {("database", "password"), ("smtp", "password"), ("celery", "password"), ("web", "secret")}
)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _check_networks(values: list[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a CIDR network ({exc})") from None
    return values


def _check_cron(value: str) -> str:
    if not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a 5-field cron expression")
    return value


class DatabaseSettings(_Section):
    url: str = "sqlite:///./vigie.db"
    password: SecretStr | None = None  # merged into the URL at connect time


def _readable_file(value: Path | None) -> Path | None:
    if value is not None and not value.is_file():
        raise ValueError(f"{value} is not a readable file")
    return value


class DnsSettings(_Section):
    resolvers: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=3.0, gt=0)
    lifetime_s: float = Field(default=8.0, gt=0)
    max_addresses: int = Field(default=16, ge=1)
    # Direct queries to a zone's name servers (lame delegation, AXFR) go to this
    # port, except for a name server that is a configured resolver: its port is kept.
    nameserver_port: int = Field(default=53, ge=1, le=65535)
    axfr_lifetime_s: float = Field(default=20.0, gt=0)  # a whole zone transfer
    # 'targets discover': wordlist lookups per second and in flight, through the resolvers.
    discovery_rate_per_s: float = Field(default=50.0, gt=0)
    discovery_concurrency: int = Field(default=16, ge=1, le=512)
    # DNSSEC trust anchors: a file of DS records in presentation format (zone. IN DS tag
    # alg digest-type digest). None: the root's KSKs as IANA publishes them, shipped as
    # vigie/data/root-anchors.txt. Chains are validated from these down to each zone.
    trust_anchors: Path | None = None

    @field_validator("resolvers")
    @classmethod
    def _resolvers(cls, values: list[str]) -> list[str]:
        for value in values:
            parse_host_port(value, 53)
        return values

    _anchors = field_validator("trust_anchors")(classmethod(lambda cls, v: _readable_file(v)))


class ScopeSettings(_Section):
    allow: list[str] = Field(default_factory=list)
    deny: list[str] = Field(default_factory=list)
    require_mandate: bool = False

    _allow = field_validator("allow")(classmethod(lambda cls, v: _check_networks(v)))
    _deny = field_validator("deny")(classmethod(lambda cls, v: _check_networks(v)))


class ScanSettings(_Section):
    ports: list[int] | Literal["top100"] = "top100"
    concurrency: int = Field(default=64, ge=1, le=4096)
    host_deadline_s: float = Field(default=120.0, gt=0)
    probe_timeout_s: float = Field(default=5.0, gt=0)
    syn_scan: bool = False
    # Every family waits for its nmap batch: small batches start probing sooner
    # (benchmark at 100 hosts: 256 -> 56-58 s, 32 -> 47-49 s).
    nmap_batch_size: int = Field(default=32, ge=1)
    nmap_max_retries: int = Field(default=1, ge=0, le=10)
    # nmap's --host-timeout; raised automatically when a rate-capped batch needs longer.
    nmap_host_timeout_s: float = Field(default=300.0, gt=0)
    connections_per_host: int = Field(default=8, ge=1)
    # The sweep's sustained rate of new connections and nmap probes. It exists for
    # the scanning box as much as for the targets: every unanswered SYN holds a
    # connection-tracking entry (NAT, Docker, stateful firewall) for two minutes.
    max_rate_per_s: float = Field(default=2000.0, gt=0)
    # Seconds' worth of that rate that may be spent at once: an on-demand scan of one
    # agency (a few thousand probes) runs at full speed; a national sweep settles to
    # the rate. 0: never more than the rate.
    rate_burst_s: float = Field(default=15.0, ge=0, le=600)
    # On-demand scans (named domains, one agency) run beside a full sweep, each in its
    # own process: each draws on this share of max_rate_per_s, and full sweeps on the
    # rest, so that a sweep and an analyst's scan together keep to the rate.
    on_demand_rate_share: float = Field(default=0.1, gt=0, lt=1)
    backoff_after_failures: int = Field(default=3, ge=1)
    # The sweep's event loop: uvloop (libuv) spends less CPU per request than asyncio's.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"

    @field_validator("ports")
    @classmethod
    def _ports(cls, value: list[int] | str) -> list[int] | str:
        if isinstance(value, list):
            for port in value:
                if not 1 <= port <= 65535:
                    raise ValueError(f"port {port} is outside 1..65535")
        return value


class TlsSettings(_Section):
    extra_ca_file: Path | None = None
    # The one root store chains are judged against: "mozilla" (certifi's copy of the
    # Mozilla root program) or "system" (the operating system's bundle).
    trust_store: Literal["mozilla", "system"] = "mozilla"
    expiry_warning_days: int = Field(default=30, ge=0)
    connections_per_server: int = Field(default=5, ge=1, le=64)
    # Threads running TLS handshakes for the whole sweep (one connection each).
    worker_threads: int = Field(default=64, ge=1, le=1024)
    # "elimination": offer every suite, drop the one the server picks, repeat
    # (a few connections per protocol); "per_suite": sslyze's one connection per suite.
    suite_enumeration: Literal["elimination", "per_suite"] = "elimination"

    @field_validator("extra_ca_file")
    @classmethod
    def _ca_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"{value} is not a readable file")
        return value


class HttpSettings(_Section):
    max_redirects: int = Field(default=5, ge=0, le=20)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_header_bytes: int = Field(default=65_536, ge=1024)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    total_timeout_s: float = Field(default=30.0, gt=0)
    user_agent: str = "vigie/0.1 (CERT exposure scan)"
    paths_file: Path | None = None
    # Sites of one host serving the same front page (one server block on 80 and 443):
    # "hits" probes the path list on one and asks the others only for what it found;
    # "all" probes every site in full.
    paths_on_mirrors: Literal["hits", "all"] = "hits"


class MailSettings(_Section):
    """The mail transport family (MX hosts of each mail domain)."""

    smtp_port: int = Field(default=25, ge=1, le=65535)
    max_mx_hosts: int = Field(default=10, ge=1, le=50)  # MX hosts probed per domain
    max_addresses_per_host: int = Field(default=4, ge=1, le=32)  # addresses per MX host
    timeout_s: float = Field(default=15.0, gt=0)  # one SMTP dialogue, one policy fetch
    helo_name: str = "vigie.invalid"  # the name vigie gives in EHLO
    mta_sts_max_bytes: int = Field(default=65_536, ge=1024)


class Ipv6Settings(_Section):
    """The IPv6 family: which ports prove the web host answers on IPv6."""

    web_ports: list[int] = Field(default_factory=lambda: [80, 443])
    connect_timeout_s: float = Field(default=5.0, gt=0)


class FindingsSettings(_Section):
    resolve_after_scans: int = Field(default=2, ge=1)
    severity_overrides: dict[str, Severity] = Field(default_factory=dict)


class SmtpSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=25, ge=1, le=65535)
    from_: str = Field(default="cert@vigie.invalid", alias="from")
    reply_to: str | None = None
    bcc: list[str] = Field(default_factory=list)
    starttls: bool = False
    implicit_tls: bool = False
    verify: bool = True
    ca_file: Path | None = None
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(default=30.0, gt=0)


class ScheduleSettings(_Section):
    sweep: str = "0 1 * * *"
    notify: str = "0 7 * * *"
    timezone: str = "Africa/Bamako"
    misfire_grace_s: int = Field(default=3600, ge=1)
    distributed: bool = False

    _sweep = field_validator("sweep")(classmethod(lambda cls, v: _check_cron(v)))
    _notify = field_validator("notify")(classmethod(lambda cls, v: _check_cron(v)))


class NotifySettings(_Section):
    language: Literal["fr", "en"] = "fr"
    min_severity: Severity = Severity.LOW
    immediate_min_severity: Severity = Severity.CRITICAL
    cert_email: str | None = None
    recall_days: dict[Severity, int] = Field(
        default_factory=lambda: {
            Severity.CRITICAL: 7,
            Severity.HIGH: 60,
            Severity.MEDIUM: 120,
            Severity.LOW: 540,
        }
    )
    # A temporary SMTP failure waits retry_base_s, then twice as long each time, up to
    # retry_max_s; after max_attempts the message is marked failed and escalated.
    retry_base_s: int = Field(default=300, ge=0)
    retry_max_s: int = Field(default=21_600, ge=0)
    max_attempts: int = Field(default=20, ge=1)
    max_problems_per_email: int = Field(default=50, ge=1)  # the rest is counted, not detailed


class GradingSettings(_Section):
    flag_below: Literal["A+", "A", "B", "C", "D", "E", "F"] = "C"
    policy: str | None = None  # policy version; None = the one in force today
    policy_file: Path | None = None
    due_days: dict[Severity, int] = Field(
        default_factory=lambda: {
            Severity.CRITICAL: 15,
            Severity.HIGH: 30,
            Severity.MEDIUM: 90,
            Severity.LOW: 180,
        }
    )


class CelerySettings(_Section):
    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str | None = None  # default: the broker
    password: SecretStr | None = None  # merged into the Redis URLs
    batch_size: int = Field(default=4, ge=1, le=1000)  # domains per task
    visibility_timeout_s: int = Field(default=3600, ge=10)  # the broker's own redelivery
    # A batch whose worker has not renewed its lease for this long (killed, machine gone)
    # is queued again; workers renew every batch_lease_s / 6 (see vigie/workers.py).
    batch_lease_s: int = Field(default=30, ge=6, le=3600)
    worker_concurrency: int = Field(default=2, ge=1)


class WebSettings(_Section):
    """The web console (vigie serve) and the sign-in links in agency digests."""

    # Where agencies reach the console, e.g. "https://vigie.cert.example": digests carry
    # a sign-in link only when it is set.
    base_url: str | None = None
    link_days: int = Field(default=14, ge=1, le=366)  # an agency link's lifetime
    rechecks_per_day: int = Field(default=3, ge=0)  # per agency (analysts are not limited)
    session_hours: int = Field(default=12, ge=1, le=720)
    login_failures: int = Field(default=5, ge=1)  # per account or address, then a pause
    login_window_s: int = Field(default=900, ge=1)
    # "auto": Secure cookies over HTTPS (proxied or not) and on loopback, where browsers
    # keep them over plain HTTP too; plain HTTP to another name gets cookies a browser
    # can store (a test set-up: production runs behind TLS). "always": Secure everywhere.
    secure_cookies: Literal["auto", "always"] = "auto"
    # Rebuild the overview and agency pages in the background when the data changed,
    # at most every prebuild_interval_s: nobody waits for a national roll-up.
    prebuild: bool = True
    prebuild_interval_s: int = Field(default=300, ge=10)
    secret: SecretStr | None = None  # VIGIE_WEB_SECRET; else generated and kept in the database

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value.rstrip("/") if value else value


class LogSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    json_format: bool = Field(default=False, alias="json")


class VulnsSettings(_Section):
    # A sweep whose imported vulnerability data is older than this says so on its summary.
    max_age_days: int = Field(default=8, ge=1)


class Settings(_Section):
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    dns: DnsSettings = Field(default_factory=DnsSettings)
    scope: ScopeSettings = Field(default_factory=ScopeSettings)
    scan: ScanSettings = Field(default_factory=ScanSettings)
    tls: TlsSettings = Field(default_factory=TlsSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    mail: MailSettings = Field(default_factory=MailSettings)
    ipv6: Ipv6Settings = Field(default_factory=Ipv6Settings)
    findings: FindingsSettings = Field(default_factory=FindingsSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    grading: GradingSettings = Field(default_factory=GradingSettings)
    celery: CelerySettings = Field(default_factory=CelerySettings)
    web: WebSettings = Field(default_factory=WebSettings)
    log: LogSettings = Field(default_factory=LogSettings)
    vulns: VulnsSettings = Field(default_factory=VulnsSettings)

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets masked."""
        data = self.model_dump(mode="json", by_alias=True)
        for section, key in SECRET_KEYS:
            if data.get(section, {}).get(key) is not None:
                data[section][key] = "********"
        # A password embedded in a URL is a secret too.
        for section, key in (("database", "url"), ("celery", "broker_url")):
            data[section][key] = mask_url_password(data[section][key])
        return data


def mask_url_password(url: str) -> str:
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    userinfo, _, host = rest.rpartition("@")
    if ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        return f"{scheme}://{user}:********@{host}"
    return url


def parse_host_port(value: str, default_port: int) -> tuple[str, int]:
    """``"127.0.0.1"`` / ``"127.0.0.1:5353"`` / ``"[::1]:53"`` -> (ip, port)."""
    host, port = value, default_port
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        if rest.startswith(":"):
            port = int(rest[1:])
    elif value.count(":") == 1:
        host, port_text = value.split(":")
        port = int(port_text)
    ipaddress.ip_address(host)  # resolvers are addresses, never names
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is outside 1..65535")
    return host, port


def _section_fields() -> dict[str, dict[str, tuple[str, str]]]:
    """{section: {ENV_SUFFIX: (key_as_written, kind)}} for every settable key.

    ``kind`` is "structured" (a list or table: JSON or comma-separated in the
    environment), "either" (a list or a plain value, like ``scan.ports``) or
    "scalar": the raw string, which pydantic converts, so that
    ``VIGIE_GRADING_POLICY=2026.1`` stays the text "2026.1".
    """
    sections: dict[str, dict[str, tuple[str, str]]] = {}
    for section_name, field_info in Settings.model_fields.items():
        model = field_info.default_factory
        assert model is not None
        section_model = type(model())  # type: ignore[call-arg]
        keys: dict[str, tuple[str, str]] = {}
        for key, info in section_model.model_fields.items():
            written = info.alias or key
            keys[written.upper()] = (written, _env_kind(info.annotation))
        sections[section_name] = keys
    return sections


def _is_container(annotation: Any) -> bool:
    return get_origin(annotation) in (list, dict, tuple, set)


def _env_kind(annotation: Any) -> str:
    if _is_container(annotation):
        return "structured"
    members = [arg for arg in get_args(annotation) if arg is not type(None)]
    containers = [arg for arg in members if _is_container(arg)]
    if get_origin(annotation) is Literal or not containers:
        return "scalar"
    return "structured" if len(containers) == len(members) else "either"


def _env_overrides(environ: dict[str, str]) -> dict[str, dict[str, Any]]:
    overrides: dict[str, dict[str, Any]] = {}
    for section, keys in _section_fields().items():
        for suffix, (key, kind) in keys.items():
            name = f"{ENV_PREFIX}{section.upper()}_{suffix}"
            if name not in environ:
                continue
            raw = environ[name]
            text = raw.strip()
            if kind == "structured" or (
                kind == "either" and (text.startswith(("[", "{")) or "," in text)
            ):
                value: Any = _parse_structured(text)
            else:
                value = raw
            overrides.setdefault(section, {})[key] = value
    return overrides


def _parse_structured(text: str) -> Any:
    """A list or table from the environment: JSON, or a comma-separated list."""
    if text.startswith(("[", "{")):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text  # pydantic names the key and the problem
    return [item.strip() for item in text.split(",") if item.strip()]


def load_settings(
    path: str | Path | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Load ``path`` (or ``$VIGIE_CONFIG``, or ``./vigie.toml`` if present) plus env overrides."""
    env = dict(os.environ if environ is None else environ)
    explicit = path is not None or "VIGIE_CONFIG" in env
    config_path = Path(path or env.get("VIGIE_CONFIG") or DEFAULT_CONFIG_FILE)
    data: dict[str, Any] = {}
    if config_path.is_file():
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    elif explicit:
        raise ConfigError(f"{config_path}: configuration file not found")
    for section, key in SECRET_KEYS:
        if isinstance(data.get(section), dict) and key in data[section]:
            raise ConfigError(
                f"{section}.{key}: secrets come only from the environment "
                f"({ENV_PREFIX}{section.upper()}_{key.upper()}), not from {config_path}"
            )
    for section, values in _env_overrides(env).items():
        target = data.setdefault(section, {})
        if not isinstance(target, dict):
            raise ConfigError(f"{section}: must be a table")
        target.update(values)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(part) for part in error["loc"])
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"{key}: {message}")
        raise ConfigError("invalid configuration: " + "; ".join(problems)) from None
    _check_database_password(settings)
    return settings


def _check_database_password(settings: Settings) -> None:
    """A password is for a database server: with SQLite it is a mistake, said plainly."""
    if settings.database.password is None:
        return
    url = settings.database.url
    if url.split(":", 1)[0].split("+", 1)[0].lower() == "sqlite":
        raise ConfigError(
            f"{ENV_PREFIX}DATABASE_PASSWORD is set but database.url is a SQLite URL ({url}): "
            "a SQLite file takes no password. Unset VIGIE_DATABASE_PASSWORD, or set "
            "database.url to a PostgreSQL URL (postgresql://user@host/name)"
        )
