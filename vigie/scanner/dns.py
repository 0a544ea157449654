"""dns checks (being written)."""

from __future__ import annotations

from vigie.model import FamilyResult
from vigie.scanner.base import ProbeContext


async def check_domain(ctx: ProbeContext, domain: str, mail_domain: bool) -> FamilyResult:
    raise NotImplementedError
