"""Small helpers shared by the TLS checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vigie.model import Finding, HostTarget
from vigie.scanner.tls._model import Endpoint

MAX_TEXT = 512  # what a server sent is untrusted text: keep evidence short
MAX_ITEMS = 50  # SAN lists and suite lists can be long; keep the first ones


def short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def first_items(items: list[str]) -> list[str]:
    return [short(item) for item in items[:MAX_ITEMS]]


def tls_finding(
    target: HostTarget,
    endpoint: Endpoint,
    check_id: str,
    evidence: Mapping[str, Any],
    discriminator: str = "",
) -> Finding:
    """A finding on ``endpoint`` of ``target``; evidence always says how the port was reached."""
    where: dict[str, Any] = {"port": endpoint.port}
    if endpoint.starttls is not None:
        where["starttls"] = endpoint.starttls.value
    return Finding(
        check_id=check_id,
        domain=target.domain,
        ip=target.ip or None,
        port=endpoint.port,
        discriminator=discriminator,
        evidence={**where, **evidence},
    )
