"""Running a sweep's coroutines on the event loop the configuration names."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from vigie.config import Settings

T = TypeVar("T")


def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's own (``scan.event_loop``)."""
    if settings.scan.event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run(main: Coroutine[Any, Any, T], settings: Settings) -> T:
    """``asyncio.run`` on the configured event loop."""
    with asyncio.Runner(loop_factory=loop_factory(settings)) as runner:
        return runner.run(main)
