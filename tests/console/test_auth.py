"""Console sign-in: cookie flags, redirects, CSRF, lockout, sign-out."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from tests.console.conftest import EMAIL, PASSWORD, csrf_of, sign_in


def test_anonymous_pages_redirect_to_sign_in(anon: TestClient) -> None:
    for path in ("/console", "/console/customers", "/console/plans?status=draft"):
        r = anon.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/console/sign-in?next=/console")
    r = anon.get("/console/sign-in")
    assert r.status_code == 200 and 'name="password"' in r.text
    assert "frame-ancestors 'self'" in r.headers["content-security-policy"]


def test_sign_in_sets_a_safe_cookie_and_signs_out(app, operator: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        page = client.get("/console/sign-in?next=/console/customers")
        token = re.search(r'name="sign_in_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = client.post(
            "/console/sign-in",
            data={"email": EMAIL, "password": PASSWORD, "sign_in_token": token, "next": "/console/customers"},
            follow_redirects=False,
        )
        assert r.status_code == 303 and r.headers["location"] == "/console/customers"
        cookie = r.headers["set-cookie"].lower()
        assert "tollway_console=" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        assert "path=/console" in cookie and "secure" not in cookie  # plain http in tests
        home = client.get("/console")
        assert home.status_code == 200 and "Overview" in home.text
        csrf = csrf_of(home.text)
        # Sign-out needs the CSRF token too.
        assert client.post("/console/sign-out", data={}, follow_redirects=False).status_code == 403
        out = client.post("/console/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
        assert out.status_code == 303
        assert client.get("/console", follow_redirects=False).status_code == 303


def test_open_redirects_are_not_followed(app, operator: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        for evil in ("https://evil.example.com/", "//evil.example.com", "/v1/customers"):
            page = client.get("/console/sign-in", params={"next": evil})
            token = re.search(r'name="sign_in_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            r = client.post(
                "/console/sign-in",
                data={"email": EMAIL, "password": PASSWORD, "sign_in_token": token, "next": evil},
                follow_redirects=False,
            )
            assert r.headers["location"] == "/console"
            client.cookies.clear()


def test_wrong_password_refused_and_locked_out(app, operator: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        for _ in range(5):
            page = client.get("/console/sign-in")
            token = re.search(r'name="sign_in_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            r = client.post("/console/sign-in", data={"email": EMAIL, "password": "nope", "sign_in_token": token})
            assert r.status_code == 401 and "wrong e-mail or password" in r.text
        page = client.get("/console/sign-in")
        token = re.search(r'name="sign_in_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = client.post("/console/sign-in", data={"email": EMAIL, "password": PASSWORD, "sign_in_token": token})
        assert r.status_code == 401 and "try again later" in r.text
        assert client.get("/console", follow_redirects=False).status_code == 303


def test_sign_in_form_without_its_token_is_refused(app, operator: str) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as client:
        r = client.post("/console/sign-in", data={"email": EMAIL, "password": PASSWORD, "sign_in_token": "forged"})
        assert r.status_code == 403
        assert client.get("/console", follow_redirects=False).status_code == 303


def test_signed_in_overview(console: TestClient) -> None:
    r = console.get("/console")
    assert r.status_code == 200
    labels = ["Overview", "Customers", "Meters", "Events", "Plans", "Simulator", "Invoices", "Webhooks", "Settings",
              "API keys"]  # the contract's order  # fmt: skip
    nav = re.findall(r'<a href="(/console[^"]*)"(?: aria-current="page")?>([^<]+)</a>', r.text.split("</nav>")[0])
    assert [label for _, label in nav] == labels
    for href, label in nav:  # every page of the navigation answers
        assert console.get(href).status_code == 200, label
    assert "No invoices for last month" in r.text
    _ = sign_in  # the fixture signs in through the same helper
