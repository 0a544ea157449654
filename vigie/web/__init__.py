"""The web console: CERT staff and agencies on the same findings (``vigie serve``).

An ASGI application (Starlette under uvicorn), server-rendered with the
reports' Jinja2 templates and SVG charts, on the same database as the CLI.
Works without JavaScript; no asset comes from elsewhere.
"""

from __future__ import annotations

from vigie.web.app import create_app

__all__ = ["create_app"]
