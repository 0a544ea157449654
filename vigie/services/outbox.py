"""The outbox as operators look at it, and digests written out as .eml files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vigie.config import Settings
from vigie.db.session import session_scope


def outbox_rows(settings: Settings, agency: str | None = None) -> list[dict[str, Any]]:
    """Every outbox entry (of one agency if named) as a row."""
    from vigie import notify
    from vigie.targets.registry import find_agency

    with session_scope(settings) as session:
        agency_id = find_agency(session, agency).id if agency else None
        return [e.to_dict() for e in notify.outbox_entries(session, agency_id=agency_id)]


def eml_name(index: int, kind: str, agency: str) -> str:
    """``003-digest-ministere-de-la-sante.eml``: sortable, safe on every file system."""
    slug = "".join(c if c.isalnum() else "-" for c in agency.lower())[:40]
    return f"{index:03d}-{kind}-{slug}.eml"


def write_drafts(settings: Settings, drafts: Sequence[Any], folder: Path) -> list[Path]:
    """Each drafted message as an .eml file in ``folder`` (created); the paths written."""
    from vigie import notify

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for index, draft in enumerate(drafts, start=1):
        path = folder / eml_name(index, draft.kind, draft.agency)
        path.write_bytes(notify.export_eml(notify.email_for_draft(settings, draft)))
        written.append(path)
    return written
