"""Console fixtures: an operator and a browser-like client signed in through the real form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient

from tests.conftest import LiveServer, start_server, stop_server
from tollway.db import session_scope
from tollway.operator.service import create_operator

EMAIL = "ops@example.com"
PASSWORD = "correct horse battery staple"


def sign_in(client: TestClient, email: str = EMAIL, password: str = PASSWORD) -> TestClient:
    page = client.get("/console/sign-in")
    token = re.search(r'name="sign_in_token" value="([^"]+)"', page.text)
    assert token, page.text
    r = client.post(
        "/console/sign-in",
        data={"email": email, "password": password, "sign_in_token": token.group(1), "next": "/console"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


def csrf_of(html: str) -> str:
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


@pytest.fixture
def operator(session_factory) -> str:  # type: ignore[no-untyped-def]
    with session_scope(session_factory) as s:
        return create_operator(s, email=EMAIL, password=PASSWORD, now=datetime.now(UTC)).id


@pytest.fixture
def console(app, operator: str) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        yield sign_in(client)


@pytest.fixture
def console_server(db_url: str) -> Iterator[tuple[LiveServer, httpx.Client]]:
    """A real ``tollway serve`` on the test database and an admin client for it."""
    server = start_server(db_url)
    try:
        key = server.key("admin")
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as admin:
            yield server, admin
    finally:
        stop_server(server)
