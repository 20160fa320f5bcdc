"""Input that no backend can store or serialize, found before it reaches a schema or a database.

JSON lets a client send things that parse in Python but break further down, on one backend or
both: ``NaN``/``Infinity`` and numbers past a double (``1e999999``, a 400-digit integer), which
are not JSON once stored; the NUL character, which PostgreSQL text cannot hold; lone UTF-16
surrogates (``"\\ud800"``), which are not UTF-8; and documents nested so deep that encoders give
up. :func:`find_problem` walks a parsed value and names the first such problem by its JSON path
(``metadata.usage[2]``); :func:`check_request` applies it to a request's path parameters, query
parameters and JSON body, raising a 422 that names the field.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request

from tollway.errors import ValidationFailed
from tollway.kit.fields import field_path

MAX_DEPTH = 32
"""Objects and arrays nest at most this deep in a request body (and in event properties)."""

NUL = "\x00"


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be stored as text, or None."""
    if NUL in value:
        return "must not contain NUL characters (\\u0000)"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "must be valid Unicode (a lone UTF-16 surrogate such as \\ud800 is not)"
    return None


def number_problem(value: int | float) -> str | None:
    """Why ``value`` cannot be stored as a JSON number, or None. Numbers must be finite and fit
    in a double (SQLite's JSON functions and most clients read JSON numbers as doubles)."""
    if isinstance(value, float):
        return None if math.isfinite(value) else "must be a finite number (NaN and Infinity are not JSON)"
    try:
        float(value)
    except OverflowError:
        return "is too large a number (at most about 1.8e308)"
    return None


def find_problem(value: Any, path: str = "", *, max_depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """The first ``(field, message)`` problem in a parsed JSON value, or None.

    ``path`` names ``value`` itself; nested fields are named ``path.key`` and ``path[i]``. A value
    nested more than ``max_depth`` objects/arrays deep is reported by its top-level field
    (``path``, or the body's field that holds it).
    """
    # Iterative, so that depth is checked before Python's own recursion limit is reached.
    stack: list[tuple[Any, str, str, int]] = [(value, path, path, 0)]
    while stack:
        item, where, top, depth = stack.pop()
        problem: str | None = None
        if isinstance(item, str):
            problem = text_problem(item)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float):
            problem = number_problem(item)
        elif isinstance(item, dict | list):
            if depth >= max_depth:
                return top or "body", f"nests objects and arrays more than {max_depth} levels deep"
            pairs = list(item.items()) if isinstance(item, dict) else list(enumerate(item))
            for key, _ in pairs:
                key_problem = text_problem(key) if isinstance(key, str) else None
                if key_problem:
                    return where or "body", f"has a key that {key_problem}"
            children = []
            for key, child in pairs:
                name = field_path(where, key)
                children.append((child, name, top or name, depth + 1))
            stack.extend(reversed(children))
        if problem:
            return where or "body", problem
    return None


def nesting_exceeds(value: Any, max_depth: int = MAX_DEPTH) -> bool:
    """Whether objects and arrays in ``value`` (itself level 1) nest more than ``max_depth``
    levels deep. Cheap for the usual flat document: one pass over its values."""
    level = [value] if type(value) in (dict, list) else []
    for _ in range(max_depth):
        deeper: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            deeper.extend(child for child in children if type(child) in (dict, list))
        if not deeper:
            return False
        level = deeper
    return True


def check_params(request: Request) -> None:
    """Path and query parameters: text only, so only NUL characters can be a problem (URLs are
    decoded with replacement characters, never into lone surrogates)."""
    for source in (request.path_params, request.query_params):
        for name, value in source.items():
            if isinstance(value, str) and NUL in value:
                raise ValidationFailed.field(name, "must not contain NUL characters (\\u0000)")


async def check_json_body(request: Request) -> None:
    """The JSON body FastAPI parsed for the route's body model (routes that read their own body,
    such as event ingestion, check it themselves)."""
    route = request.scope.get("route")
    if getattr(route, "body_field", None) is None:
        return
    if not await request.body():
        return
    try:
        payload = await request.json()  # the document FastAPI already parsed (cached)
    except (ValueError, RecursionError):  # not JSON: FastAPI reports it
        return
    found = find_problem(payload)
    if found:
        raise ValidationFailed.field(*found)


async def check_request(request: Request) -> None:
    check_params(request)
    await check_json_body(request)
