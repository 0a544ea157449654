"""The shape of a family's table of checks: check ID -> the function(s) producing it.

Each family package has a ``checks`` module holding its ``CHECKS`` table, and
``vigie.scanner.families`` lists the families with their tables: one place where
a reviewer sees which function produces which public check ID, and which a test
compares with the catalogue both ways.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

ChecksTable = Mapping[str, tuple[Callable[..., Any], ...]]
