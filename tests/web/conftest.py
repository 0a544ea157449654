"""Shared set-up of the console tests: the reports' seeded registry (three agencies, three
scans of history with hostile evidence), CERT accounts, and clients signed in as each kind
of user."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.report_data import DATA_AGENCY, STATS_AGENCY, Seeded, seed
from vigie.config import Settings, WebSettings
from vigie.db.session import dispose_engines, session_scope
from vigie.web import cache, create_app
from vigie.web.accounts import add_user, agency_link_token

ANALYST_PASSWORD = "correct horse battery staple"
ADMIN_PASSWORD = "admin horse battery staple"


def web_settings(settings: Settings, **web: object) -> Settings:
    values = {
        "secret": "test-secret-for-signing-0123456789",
        "rechecks_per_day": 2,
        "prebuild": False,  # no background page builds racing the tests' database
        **web,
    }
    scope = settings.scope.model_copy(update={"require_mandate": True})
    return settings.model_copy(update={"web": WebSettings(**values), "scope": scope})  # type: ignore[arg-type]


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)


@dataclass
class World:
    seeded: Seeded
    settings: Settings
    make_client: Callable[[], TestClient]

    @property
    def data_id(self) -> int:
        return self.seeded.agency_ids[DATA_AGENCY]

    @property
    def stats_id(self) -> int:
        return self.seeded.agency_ids[STATS_AGENCY]

    def analyst(self) -> TestClient:
        return self.sign_in("alice", ANALYST_PASSWORD)

    def admin(self) -> TestClient:
        return self.sign_in("root", ADMIN_PASSWORD)

    def sign_in(self, username: str, password: str) -> TestClient:
        client = self.make_client()
        page = client.get("/login")
        response = client.post(
            "/login",
            data={"username": username, "password": password, "csrf": csrf_of(page.text)},
        )
        assert response.status_code == 200 and "/login" not in str(response.url), response.text
        return client

    def agency(self, agency_id: int) -> TestClient:
        client = self.make_client()
        with session_scope(self.settings) as session:
            token = agency_link_token(session, self.settings, agency_id)
        response = client.get(f"/link/{token}")
        assert response.status_code == 200
        assert str(response.url).endswith(f"/agencies/{agency_id}")
        return client


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    cache.clear()
    seeded = seed(tmp_path)
    settings = web_settings(seeded.settings)
    with session_scope(settings) as session:
        add_user(session, "alice", ANALYST_PASSWORD, "analyst")
        add_user(session, "root", ADMIN_PASSWORD, "admin")
    app = create_app(settings)

    def make_client() -> TestClient:
        return TestClient(app, base_url="https://testserver")

    yield World(seeded, settings, make_client)
    dispose_engines()
