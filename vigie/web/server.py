"""Serving the console: uvicorn, and optionally a plain-HTTP listener that only redirects
to HTTPS (so one ``vigie serve`` is a complete TLS deployment: http.no_https_redirect)."""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from vigie.web.app import SecurityHeaders


def https_redirect_app(https_port: int) -> Any:
    """Every plain-HTTP request goes to the same host and path over HTTPS."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        host = (request.url.hostname or "").strip("[]")
        if not host:
            response: Response = PlainTextResponse("Host header required\n", status_code=400)
        else:
            if ":" in host:
                host = f"[{host}]"
            authority = host if https_port == 443 else f"{host}:{https_port}"
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response = RedirectResponse(f"https://{authority}{path}", status_code=301)
        await response(scope, receive, send)

    return SecurityHeaders(app)


def run_console(
    app: Any,
    *,
    host: str,
    port: int,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    http_port: int | None = None,
    forwarded_allow_ips: str | None = None,
    log_level: str = "warning",
) -> None:
    common: dict[str, Any] = {"log_level": log_level, "server_header": False, "lifespan": "off"}
    if forwarded_allow_ips is not None:
        common |= {"proxy_headers": True, "forwarded_allow_ips": forwarded_allow_ips}
    else:
        common |= {"proxy_headers": False}
    main = uvicorn.Config(
        app, host=host, port=port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, **common
    )
    if http_port is None:
        uvicorn.Server(main).run()
        return
    redirect = uvicorn.Config(https_redirect_app(port), host=host, port=http_port, **common)

    async def both() -> None:
        await asyncio.gather(uvicorn.Server(main).serve(), uvicorn.Server(redirect).serve())

    asyncio.run(both())
