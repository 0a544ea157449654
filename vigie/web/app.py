"""The ASGI application: routes, sessions, CSRF, security headers, access rules.

Every route is declared once in ``ROUTES`` with who may use it: ``public``
(sign-in), ``any`` (CERT staff, or an agency contact within their own
agency), ``staff`` (analysts and admins) or ``admin``. Objects of another
agency, and staff pages asked by an agency, answer 404: a contact cannot learn
what exists elsewhere. Handlers are plain functions run in a worker thread
with one database session each; the event loop only parses forms and cookies.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlmodel import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigie.config import Settings
from vigie.db.migrate import ensure_database
from vigie.db.session import session_scope
from vigie.db.tables import Agency
from vigie.errors import NotFoundError, UsageError
from vigie.i18n import LANGUAGES, normalise_language
from vigie.parsing import ascii_int
from vigie.web.accounts import (
    Principal,
    Throttled,
    active_user,
    console_secret,
)
from vigie.web.rendering import render

SESSION_COOKIE = "vigie_session"
SESSION_SALT = "vigie.session"
MAX_FORM_BYTES = 2 * 1024 * 1024  # a registry CSV of a few thousand rows

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "connect-src 'self'"
)
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class SecurityHeaders:
    """Adds the security headers to every response (pages, files, errors alike)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v) for k, v in message.get("headers", []) if k.lower() not in (b"server",)
                ]
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
                if b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


# --- per-request context ----------------------------------------------------------


@dataclass
class Ctx:
    """What a handler gets: the request, its form, who is signed in, the database."""

    request: Request
    settings: Settings
    db: Session
    who: Principal | None
    session_data: dict[str, Any]
    language: str
    form: FormData | None = None
    set_cookie: bool = False
    flashes: list[str] = field(default_factory=list)

    @property
    def client(self) -> str:
        return self.request.client.host if self.request.client else ""

    @property
    def principal(self) -> Principal:
        assert self.who is not None
        return self.who

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def int_param(self, name: str) -> int:
        value = self.request.path_params[name]
        if not isinstance(value, int):
            raise NotFoundError(name)
        return value

    def query(self, name: str, default: str = "") -> str:
        return self.request.query_params.get(name, default).strip()

    def field(self, name: str, default: str = "") -> str:
        if self.form is None:
            return default
        value = self.form.get(name, default)
        return value.strip() if isinstance(value, str) else default

    def flash(self, message: str) -> None:
        self.session_data.setdefault("flash", []).append(message)
        self.set_cookie = True

    def render(self, template: str, code: int = 200, **context: Any) -> HTMLResponse:
        flashes = self.session_data.pop("flash", [])
        if flashes:
            self.set_cookie = True
        html = render(
            template,
            self.language,
            {
                "who": self.who,
                "csrf": self.session_data.get("csrf", ""),
                "flashes": flashes,
                "path": self.request.url.path,
                "query": self.request.query_params,
                "settings": self.settings,
                **context,
            },
        )
        return HTMLResponse(html, status_code=code)


Handler = Callable[[Ctx], Response]


@dataclass(frozen=True)
class RouteSpec:
    path: str
    handler: Handler
    methods: tuple[str, ...]
    access: str  # public | any | staff | admin
    name: str


ROUTES: list[RouteSpec] = []


def route(path: str, *, methods: tuple[str, ...] = ("GET",), access: str = "any") -> Any:
    def register(handler: Handler) -> Handler:
        ROUTES.append(RouteSpec(path, handler, methods, access, handler.__name__))
        return handler

    return register


# --- the application -----------------------------------------------------------------


class Console:
    """The console's state: settings, the session signer, the endpoint wrapper."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        ensure_database(settings)
        with session_scope(settings) as db:
            secret = console_secret(db, settings)
        self.signer = URLSafeTimedSerializer(secret, salt=SESSION_SALT)

    # Sessions: a signed cookie holding who is signed in, the CSRF token, the language.

    def read_session(self, request: Request) -> dict[str, Any]:
        raw = request.cookies.get(SESSION_COOKIE)
        if raw:
            try:
                data = self.signer.loads(raw, max_age=self.settings.web.session_hours * 3600)
                if isinstance(data, dict) and isinstance(data.get("csrf"), str):
                    return data
            except (BadSignature, SignatureExpired):
                pass
        return {"csrf": secrets.token_urlsafe(32), "new": True}

    def write_session(self, request: Request, response: Response, data: dict[str, Any]) -> None:
        data.pop("new", None)
        response.set_cookie(
            SESSION_COOKIE,
            str(self.signer.dumps(data)),
            max_age=self.settings.web.session_hours * 3600,
            httponly=True,
            secure=self.secure_cookie(request),
            samesite="strict",
            path="/",
        )

    def secure_cookie(self, request: Request) -> bool:
        if self.settings.web.secure_cookies == "always" or request.url.scheme == "https":
            return True
        host = (request.url.hostname or "").strip("[]")
        if host == "localhost" or host.endswith(".localhost"):
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def principal(self, db: Session, data: Mapping[str, Any]) -> Principal | None:
        who = data.get("who")
        if not isinstance(who, dict):
            return None
        if who.get("k") == "user":
            user = active_user(db, str(who.get("u", "")))
            return Principal("user", user.username, user.role) if user else None
        if who.get("k") == "agency":
            from vigie.web.accounts import link_still_valid

            agency = db.get(Agency, who.get("a"))
            if agency is None or not agency.active:
                return None
            if not link_still_valid(db, agency.id or 0, float(who.get("t", 0))):
                return None
            return Principal("agency", agency.name, "agency", agency.id)
        return None

    def language(self, db: Session, request: Request, data: dict[str, Any], who: Any) -> str:
        wanted = request.query_params.get("lang")
        if wanted in LANGUAGES:
            data["lang"] = wanted
            return str(wanted)
        if data.get("lang") in LANGUAGES:
            return str(data["lang"])
        if who is not None and who.kind == "agency":
            agency = db.get(Agency, who.agency_id)
            if agency is not None:
                return normalise_language(agency.language)
        return accept_language(request.headers.get("accept-language", ""))

    def endpoint(self, spec: RouteSpec) -> Callable[[Request], Any]:
        async def call(request: Request) -> Response:
            form = None
            if request.method == "POST":
                declared = request.headers.get("content-length") or "0"
                length = ascii_int(declared)
                if length is None or length > MAX_FORM_BYTES:
                    return HTMLResponse("request too large", status_code=413)
                form = await request.form(max_part_size=MAX_FORM_BYTES)
            return await run_in_threadpool(self.dispatch, spec, request, form)

        call.__name__ = spec.name
        return call

    def dispatch(self, spec: RouteSpec, request: Request, form: FormData | None) -> Response:
        data = self.read_session(request)
        with session_scope(self.settings) as db:
            who = self.principal(db, data)
            ctx = Ctx(
                request,
                self.settings,
                db,
                who,
                data,
                self.language(db, request, data, who),
                form,
                set_cookie=bool(data.get("new")) or "lang" in request.query_params,
            )
            response = self._guarded(spec, ctx)
        if ctx.set_cookie:
            self.write_session(request, response, data)
        return response

    def _guarded(self, spec: RouteSpec, ctx: Ctx) -> Response:
        if spec.access != "public" and ctx.who is None:
            if ctx.request.method != "GET":
                return ctx.render("web/login.html.j2", code=401, next="/", error=None)
            target = ctx.request.url.path
            if ctx.request.url.query:
                target += "?" + ctx.request.url.query
            return RedirectResponse(f"/login?next={_quote(target)}", status_code=303)
        if ctx.who is not None and (
            (spec.access == "staff" and not ctx.who.is_staff)
            or (spec.access == "admin" and not ctx.who.is_admin)
        ):
            return not_found(ctx)
        if ctx.request.method == "POST" and not hmac.compare_digest(
            ctx.field("csrf"), str(ctx.session_data.get("csrf", ""))
        ):
            return ctx.render(
                "web/error.html.j2", code=403, message="form expired: reload the page"
            )
        try:
            return spec.handler(ctx)
        except NotFoundError:
            ctx.db.rollback()
            return not_found(ctx)
        except Throttled as exc:
            ctx.db.rollback()
            return ctx.render("web/error.html.j2", code=429, message=str(exc))
        except UsageError as exc:
            ctx.db.rollback()
            return ctx.render("web/error.html.j2", code=400, message=str(exc))


def not_found(ctx: Ctx) -> Response:
    return ctx.render("web/error.html.j2", code=404, message=None)


def _quote(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


def accept_language(header: str) -> str:
    """The first of our languages the browser asks for (q-values honoured), French otherwise."""
    choices = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            choices.append((-quality, index, primary))
    return sorted(choices)[0][2] if choices else "fr"


def create_app(settings: Settings) -> Starlette:
    """The console as an ASGI application."""
    from vigie.web import pages  # noqa: F401  (registers the routes)

    console = Console(settings)
    routes: list[Any] = [
        Route(spec.path, console.endpoint(spec), methods=list(spec.methods), name=spec.name)
        for spec in ROUTES
    ]
    static = Path(__file__).parent / "static"
    routes.append(Mount("/static", app=StaticFiles(directory=static), name="static"))
    app = Starlette(routes=routes, exception_handlers={404: _plain_404, 405: _plain_405})
    app.add_middleware(SecurityHeaders)
    app.state.console = console
    if settings.web.prebuild:
        from vigie.web.cache import Warmer

        app.state.warmer = Warmer(settings, settings.web.prebuild_interval_s).start()
    return app


async def _plain_404(request: Request, exc: Exception) -> Response:
    return HTMLResponse("<!DOCTYPE html><title>404</title><p>Not found</p>", status_code=404)


async def _plain_405(request: Request, exc: Exception) -> Response:
    return HTMLResponse("<!DOCTYPE html><title>405</title><p>Not allowed</p>", status_code=405)
