"""``vigie serve`` (the web console) and ``vigie users`` (its CERT accounts)."""

from __future__ import annotations

import getpass
import os
import sys

import click

from vigie.cli._common import TABLE_FORMATS, State, console, emit, pass_state
from vigie.errors import UsageError
from vigie.services.accounts import USER_COLUMNS, account_rows, add_account, disable_account


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--ssl-certfile",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="Serve HTTPS with this certificate chain (PEM).",
)
@click.option(
    "--ssl-keyfile",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="The certificate's private key (PEM).",
)
@click.option(
    "--http-port",
    type=click.IntRange(1, 65535),
    default=None,
    help="With a certificate: also listen on this port, redirecting plain HTTP to HTTPS.",
)
@click.option(
    "--proxy-headers",
    is_flag=True,
    help="Trust X-Forwarded-For/-Proto from the reverse proxy (see --forwarded-allow-ips).",
)
@click.option(
    "--forwarded-allow-ips",
    default="127.0.0.1",
    show_default=True,
    help="With --proxy-headers: the proxy's addresses ('*' when only it can connect).",
)
@pass_state
def serve(
    state: State,
    host: str,
    port: int,
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
    http_port: int | None,
    proxy_headers: bool,
    forwarded_allow_ips: str,
) -> None:
    """Run the web console (ASGI, uvicorn) on the same database as the CLI."""
    from vigie.web import create_app
    from vigie.web.server import run_console

    if http_port is not None and not ssl_certfile:
        raise UsageError("--http-port redirects to HTTPS: give --ssl-certfile and --ssl-keyfile")
    settings = state.database()
    app = create_app(settings)
    console.print(f"vigie console on {'https' if ssl_certfile else 'http'}://{host}:{port}/")
    run_console(
        app,
        host=host,
        port=port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        http_port=http_port,
        forwarded_allow_ips=forwarded_allow_ips if proxy_headers else None,
        log_level="info" if state.verbose else "warning",
    )


@click.group()
def users() -> None:
    """CERT accounts of the web console (roles admin and analyst)."""


@users.command("add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(["admin", "analyst"]), default="analyst", show_default=True
)
@click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input (scripts)."
)
@pass_state
def users_add(state: State, username: str, role: str, password_stdin: bool) -> None:
    """Create the account USERNAME; the password is asked (or read from stdin)."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif os.environ.get("VIGIE_WEB_PASSWORD"):
        password = os.environ["VIGIE_WEB_PASSWORD"]
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise UsageError("the passwords differ")
    summary = add_account(state.database(), username, password, role)
    console.print(summary, highlight=False, markup=False)


@users.command("list")
@click.option("--format", "fmt", type=TABLE_FORMATS, default="table", show_default=True)
@pass_state
def users_list(state: State, fmt: str) -> None:
    """List the console's accounts."""
    emit(account_rows(state.database()), list(USER_COLUMNS), fmt)


@users.command("disable")
@click.argument("username")
@pass_state
def users_disable(state: State, username: str) -> None:
    """Disable USERNAME: its sessions end at their next request."""
    disable_account(state.database(), username)
    console.print(f"user {username} disabled", highlight=False, markup=False)
