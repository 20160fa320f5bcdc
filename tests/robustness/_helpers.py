"""Helpers for the robustness tests: bad input must get a 4xx problem+json naming the field."""

from __future__ import annotations

from typing import Any

from httpx import Response

JSON = {"content-type": "application/json"}


def problem(r: Response, status: int, field: str | None = None) -> dict[str, Any]:
    """Assert ``r`` is an RFC 9457 problem with ``status`` whose errors name ``field``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    if field is not None:
        fields = [e["field"] for e in body["errors"]]
        assert field in fields, body
    return body


def nested(depth: int, leaf: str = "1") -> str:
    """A JSON object nested ``depth`` levels deep: {"a":{"a":...1}}."""
    return '{"a":' * depth + leaf + "}" * depth
