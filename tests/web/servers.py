"""The console served for real: uvicorn in a thread on an address of 127.0.21.0/24."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn

WEB_NET = "127.0.21.0/24"


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve_console(app: Any, host: str, port: int, **ssl: Any) -> Iterator[str]:
    """Run ``app`` under uvicorn until the block ends; yields its base URL."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", server_header=False, lifespan="off", **ssl
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{host}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError(f"uvicorn did not start on {host}:{port}")
        time.sleep(0.05)
    scheme = "https" if ssl else "http"
    try:
        yield f"{scheme}://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def chromium(window: str = "1280,1000", downloads: Path | None = None) -> Any:
    """Debian's headless chromium through chromium-driver (Selenium), reading French."""
    import shutil

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-proxy-server",
        f"--window-size={window}",
        "--lang=fr-FR",
    ):
        options.add_argument(argument)
    prefs: dict[str, Any] = {"intl.accept_languages": "fr-FR,fr"}
    if downloads is not None:
        prefs |= {
            "download.default_directory": str(downloads),
            "download.prompt_for_download": False,
        }
    options.add_experimental_option("prefs", prefs)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
