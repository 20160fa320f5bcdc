"""Admission before the body: an ASGI middleware that authenticates and authorizes a request by
its route, then reads at most the route's body limit, before any handler, body parser or the
Idempotency-Key middleware sees the request.

A route says what it requires through its admission dependency (``require_scope`` here, the
portal's token dependency elsewhere): the dependency carries an :class:`Access` as its
``tollway_access`` attribute. At the first request the gate walks the app's routes once and
remembers, per route, the first ``Access`` found in its dependency tree. For each request it
finds the route the router will pick, and then, in this order:

1. ``access.authenticate(request)`` (in the threadpool, or awaited when it is a coroutine
   function) returns a principal or raises
   ``Unauthorized`` → 401 (the body is never read);
2. ``access.authorize(principal)`` raises ``Forbidden`` → 403;
3. every hook in ``app.state.admission_hooks`` (``async (request, principal) -> None``, e.g. a
   per-key rate limit raising a 429) runs;
4. a declared ``Content-Length`` over the limit → 413; otherwise the body is read, counting, and
   more than the limit → 413; the body read is replayed to the application.

The principal is left in the ASGI scope (:func:`admitted` reads it). A principal has a
``subject`` string naming who it is (``key:<id>``, ``portal:<id>``): idempotency records, rate
limits and logs key on it. Routes without an ``Access`` (health, docs, static pages) pass through.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from fastapi.concurrency import run_in_threadpool
from fastapi.routing import iter_route_contexts
from starlette.requests import Request
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollway.errors import PayloadTooLarge, TollwayError, Unauthorized, problem_response, title_of

PRINCIPAL_KEY = "tollway.principal"
ROUTE_KEY = "tollway.route"  # the matched route's path template (for the access log)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class Principal(Protocol):
    @property
    def subject(self) -> str: ...


def _allow(_: Any) -> None:
    return None


@dataclass(frozen=True)
class Access:
    """What a route requires before its body is read."""

    authenticate: Callable[[Request], Any]
    """Returns the principal or raises ``Unauthorized``. A plain function runs in the threadpool
    (it may query the database); a coroutine function is awaited on the event loop."""
    authorize: Callable[[Any], None] = _allow
    """Raises ``Forbidden`` when the principal may not use the route."""
    max_body_bytes: int | None = None
    """The route's body limit; None: ``settings.max_body_bytes``."""


def declare(dependency: Any, access: Access) -> Any:
    """Attach ``access`` to an admission dependency (returns the dependency)."""
    dependency.tollway_access = access
    return dependency


@dataclass(frozen=True)
class Caller:
    """The principal of a route that authenticates its callers itself."""

    subject: str


def unauthenticated(subject: str) -> Callable[[Request], Any]:
    """Admission for a route with no API key because it checks its callers itself (a payment
    provider's signed webhook): the gate still bounds its body. Use it as the route's (or the
    router's) dependency."""

    def admit(request: Request) -> Any:
        return admitted(request)

    return declare(admit, Access(authenticate=lambda _: Caller(subject)))  # type: ignore[no-any-return]


def admitted(request: Request) -> Any:
    """The principal the gate admitted for this request. Fails closed: a route reached without
    the gate (not installed, or a route it does not know) is refused."""
    principal = request.scope.get(PRINCIPAL_KEY)
    if principal is None:
        raise Unauthorized("request not authenticated")
    return principal


def _access_of(dependant: Any) -> Access | None:
    stack = [dependant]
    while stack:
        current = stack.pop(0)
        found = getattr(current.call, "tollway_access", None)
        if isinstance(found, Access):
            return found
        stack.extend(current.dependencies)
    return None


class _Disconnected(Exception):
    pass


class AdmissionGate:
    def __init__(self, app: ASGIApp, fastapi_app: Any) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self._table: list[tuple[Any, Access | None, str]] = []
        self._routes_seen = -1

    def _routes(self) -> list[tuple[Any, Access | None, str]]:
        routes = self.fastapi_app.routes
        if len(routes) != self._routes_seen:  # built at the first request (and if routes are added)
            table = []
            for route in iter_route_contexts(routes):
                dependant = getattr(route, "dependant", None)
                access = _access_of(dependant) if dependant is not None else None
                table.append((route, access, getattr(route, "path", None) or ""))
            self._table, self._routes_seen = table, len(routes)
        return self._table

    def _match(self, scope: Scope) -> tuple[Access | None, str | None]:
        for route, access, path in self._routes():
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return access, path
        return None, None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        access, path = self._match(scope)
        if path is not None:
            scope[ROUTE_KEY] = path
        if access is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            if inspect.iscoroutinefunction(access.authenticate):
                principal = await access.authenticate(request)
            else:
                principal = await run_in_threadpool(access.authenticate, request)
            access.authorize(principal)
            for hook in getattr(self.fastapi_app.state, "admission_hooks", ()):
                await hook(request, principal)
            limit = access.max_body_bytes or self.fastapi_app.state.settings.max_body_bytes
            body = await self._read_body(scope, receive, limit) if scope["method"] in BODY_METHODS else None
        except _Disconnected:  # nobody is left to answer
            return
        except TollwayError as exc:
            await problem_response(
                exc.status, title_of(exc.status), exc.message, code=exc.code, errors=exc.errors, headers=exc.headers
            )(scope, receive, send)
            return
        scope[PRINCIPAL_KEY] = principal
        await self.app(scope, _replay(body, receive) if body is not None else receive, send)

    @staticmethod
    async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"request body is larger than {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def iter_access(app: Any) -> Iterator[tuple[str, set[str], Access | None]]:
    """(path, methods, access) of every route (tests and docs use it to check coverage)."""
    for route in iter_route_contexts(app.routes):
        dependant = getattr(route, "dependant", None)
        access = _access_of(dependant) if dependant is not None else None
        yield getattr(route, "path", "") or "", set(getattr(route, "methods", None) or ()), access
