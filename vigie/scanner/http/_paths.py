"""The exposed-path list: ``vigie/data/http_paths.toml`` plus ``http.paths_file``."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from vigie.errors import ConfigError
from vigie.scanner.http._content import DETECTORS
from vigie.scanner.http._model import PathProbe

DEFAULT_RESOURCE = ("data", "http_paths.toml")
# The checks a path entry may prove.
PATH_CHECKS = frozenset(
    {
        "http.directory_listing",
        "http.exposed.vcs",
        "http.exposed.env_file",
        "http.exposed.server_status",
        "http.exposed.phpinfo",
        "http.exposed.admin_panel",
        "http.exposed.backup",
        "http.crossdomain.permissive",
    }
)


def parse_path_list(text: str, source: str) -> tuple[PathProbe, ...]:
    """Validate one path file; ConfigError names the file and the entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    entries = data.get("path", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{source}: 'path' must be an array of tables ([[path]])")
    return tuple(
        _entry(entry, f"{source}: path #{number}") for number, entry in enumerate(entries, 1)
    )


def _entry(entry: Any, where: str) -> PathProbe:
    if not isinstance(entry, dict) or set(entry) != {"path", "check", "detector"}:
        raise ConfigError(f"{where}: needs exactly the keys path, check, detector")
    path, check, detector = entry["path"], entry["check"], entry["detector"]
    if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in " \r\n#"):
        raise ConfigError(f"{where}: path must start with '/' and hold no space or '#'")
    if check not in PATH_CHECKS:
        raise ConfigError(
            f"{where}: check {check!r} is not one of {', '.join(sorted(PATH_CHECKS))}"
        )
    if detector not in DETECTORS:
        raise ConfigError(f"{where}: unknown detector {detector!r}")
    return PathProbe(path, check, detector)


@functools.lru_cache(maxsize=8)
def load_path_list(extra_file: Path | None) -> tuple[PathProbe, ...]:
    """The built-in paths, then those of ``extra_file``, without duplicates."""
    builtin = resources.files("vigie").joinpath(*DEFAULT_RESOURCE).read_text(encoding="utf-8")
    probes = list(parse_path_list(builtin, "vigie/data/http_paths.toml"))
    if extra_file is not None:
        try:
            text = extra_file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"http.paths_file: cannot read {extra_file}: {exc}") from None
        probes.extend(parse_path_list(text, str(extra_file)))
    return tuple(dict.fromkeys(probes))


def expand(probe: PathProbe, domain: str) -> PathProbe:
    """``{domain}`` in a path is the scanned domain."""
    if "{domain}" not in probe.path:
        return probe
    return PathProbe(
        probe.path.replace("{domain}", domain.lower().rstrip(".")), probe.check, probe.detector
    )
