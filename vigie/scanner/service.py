"""service checks (being written)."""

from __future__ import annotations

from vigie.model import Family, FamilyResult, HostTarget, OpenPort
from vigie.scanner.base import ProbeContext


async def check_services(ctx: ProbeContext, target: HostTarget, ports: list[OpenPort]) -> FamilyResult:
    raise NotImplementedError
