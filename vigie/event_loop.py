"""Running a sweep's coroutines on the event loop the configuration names.

Connection faults that surface outside any probe (a peer that resets while
uvloop's TLS protocol is being set up: "unable to perform operation on
<TCPTransport closed=True>; the handler is closed") are the probe's business:
the probe sees its own timeout or error and reports it as a finding. The loop's
exception handler logs them at debug instead of printing a traceback; anything
else still goes to asyncio's default handler.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from vigie.config import Settings

T = TypeVar("T")

log = logging.getLogger("vigie.event_loop")

CONNECTION_ERRNOS = frozenset(
    {
        errno.ECONNRESET,
        errno.ECONNREFUSED,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ENOTCONN,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EBADF,
    }
)
# What uvloop and asyncio say when a transport the peer already closed is used.
CLOSED_TRANSPORT_MARKS = ("the handler is closed", "unable to perform operation on")


def is_connection_fault(exc: BaseException) -> bool:
    """A fault of the connection (the peer reset, refused, vanished), not of vigie."""
    if isinstance(exc, ConnectionError | ssl.SSLError | TimeoutError | EOFError):
        return True
    if isinstance(exc, OSError) and exc.errno in CONNECTION_ERRNOS:
        return True
    if isinstance(exc, RuntimeError):
        return any(mark in str(exc) for mark in CLOSED_TRANSPORT_MARKS)
    return False


def exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """Connection faults at debug; everything else to asyncio's default handler."""
    exc = context.get("exception")
    if isinstance(exc, BaseException) and is_connection_fault(exc):
        log.debug("connection fault outside a probe: %s", context.get("message", ""), exc_info=exc)
        return
    loop.default_exception_handler(context)


def loop_factory(settings: Settings) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory, or None for asyncio's own (``scan.event_loop``)."""
    if settings.scan.event_loop == "uvloop":
        import uvloop

        return uvloop.new_event_loop
    return None


def run(main: Coroutine[Any, Any, T], settings: Settings) -> T:
    """``asyncio.run`` on the configured event loop, with vigie's exception handler."""
    with asyncio.Runner(loop_factory=loop_factory(settings)) as runner:
        runner.get_loop().set_exception_handler(exception_handler)
        return runner.run(main)
