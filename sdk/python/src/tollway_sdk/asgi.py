"""ASGI middleware (Starlette, FastAPI, any ASGI 3 app): one Tollway event per HTTP request.

    app.add_middleware(TollwayASGIMiddleware, client=client, identify=lambda r: r.headers.get("x-customer"))

Measured for each request: ``method``, ``route`` (the route template such as
``/v1/users/{user_id}``), ``status``, ``duration_ms`` (until the last body chunk
was handed to the server, so streaming responses count in full),
``request_bytes`` and ``response_bytes`` (bodies, not headers).

All of the SDK's work happens after the application has finished the response;
the wrapped ``receive``/``send`` only add up lengths. Nothing the SDK does can
raise into the request (see :mod:`tollway_sdk.middleware`).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tollway_sdk.middleware import Identify, Metering, PropertiesHook, RouteHook, Tracker

try:  # Starlette is optional: it gives identify() a familiar Request object.
    from starlette.requests import Request as _StarletteRequest
    from starlette.routing import Mount as _Mount
except ImportError:  # pragma: no cover - exercised only without starlette
    _StarletteRequest = None  # type: ignore[assignment,misc]
    _Mount = None  # type: ignore[assignment,misc]

__all__ = ["ScopeRequest", "TollwayASGIMiddleware"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ScopeRequest:
    """Minimal request view given to hooks when Starlette is not installed."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.method: str = scope.get("method", "")
        self.path: str = scope.get("path", "")
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


class _Exchange:
    __slots__ = ("request_bytes", "response_bytes", "response_headers", "status")

    def __init__(self) -> None:
        self.status = 0
        self.request_bytes = 0
        self.response_bytes = 0
        self.response_headers: list[tuple[bytes, bytes]] = []


class TollwayASGIMiddleware:
    """Meters every HTTP request of an ASGI app; websocket and lifespan pass through.

    - ``identify(request) -> customer id | None``: ``None`` (or "") means the
      request is not metered (counted in ``client.stats.unidentified``). With
      Starlette installed ``request`` is a ``starlette.requests.Request``
      (headers, query params, ``request.state`` set by your auth code — the hook
      runs after the response, so state set during the request is visible).
    - ``properties(request, response) -> dict``: extra properties; ``response``
      is a :class:`~tollway_sdk.ResponseInfo`. They are merged over the standard
      ones.
    - ``route(request) -> str | None``: overrides the route template.
    - ``enforce_limits=True``: before the app runs, ``identify(request)`` names the customer
      and Tollway's decision (cached for at most 1 s per customer, see
      :mod:`tollway_sdk.limits`) is asked; a refused request is answered 429
      ``application/problem+json`` with ``Retry-After`` and never reaches the app (nor is it
      metered). ``limits_meter`` checks one meter's limits instead of all of them.
    """

    def __init__(
        self,
        app: ASGIApp,
        client: Tracker,
        identify: Identify,
        properties: PropertiesHook | None = None,
        event_type: str = "api_call",
        *,
        route: RouteHook | None = None,
        enforce_limits: bool = False,
        limits_meter: str | None = None,
    ) -> None:
        self.app = app
        self._metering = Metering(client, identify, properties, event_type, route)
        self._metering.enforce(enforce_limits, limits_meter)

    async def _refused(self, scope: Scope, send: Send) -> bool:
        """Answer the request here when Tollway refuses it."""
        metering = self._metering
        request = _StarletteRequest(scope) if _StarletteRequest is not None else ScopeRequest(scope)
        customer = metering.customer_of(request)
        if customer is None:
            return False
        checker = metering.client.limits
        decision = checker.cached(customer, metering.limits_meter)
        if decision is None:  # ask off the event loop
            decision = await asyncio.to_thread(checker.decide, customer, metering.limits_meter)
        if decision.allowed:
            return False
        status, headers, body = metering.refusal(decision)
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
        await send({"type": "http.response.start", "status": status, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        if self._metering.enforce_limits:
            try:
                refused = await self._refused(scope, send)
            except Exception:
                self._metering.failed("checking limits failed (request let through)")
                refused = False
            if refused:
                return

        exchange = _Exchange()
        root_path = scope.get("root_path", "") or ""
        started = time.perf_counter()

        async def receive_counting() -> Message:
            message = await receive()
            if message.get("type") == "http.request":
                exchange.request_bytes += len(message.get("body") or b"")
            return message

        async def send_counting(message: Message) -> None:
            kind = message.get("type")
            if kind == "http.response.body":
                exchange.response_bytes += len(message.get("body") or b"")
            elif kind == "http.response.start":
                exchange.status = message.get("status") or 0
                exchange.response_headers = message.get("headers") or []
            elif kind == "http.response.pathsend":  # ASGI pathsend extension
                try:
                    exchange.response_bytes += os.path.getsize(message["path"])
                except (OSError, KeyError, TypeError):
                    pass
            await send(message)

        error = False
        try:
            await self.app(scope, receive_counting, send_counting)
        except BaseException:
            error = True
            raise
        finally:
            self._record(scope, exchange, root_path, time.perf_counter() - started, error)

    def _record(self, scope: Scope, exchange: _Exchange, root_path: str, seconds: float, error: bool) -> None:
        metering = self._metering
        try:
            request = _StarletteRequest(scope) if _StarletteRequest is not None else ScopeRequest(scope)
            route = metering.custom_route(request) or _route_template(scope, root_path)
            request_bytes = max(exchange.request_bytes, _content_length(scope))
            status = exchange.status or (500 if error else 0)
            response_headers = exchange.response_headers
            metering.emit(
                request,
                method=scope.get("method", ""),
                route=route,
                status=status,
                duration_ms=seconds * 1000.0,
                request_bytes=request_bytes,
                response_bytes=exchange.response_bytes,
                headers=lambda: {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in response_headers},
                error=error,
            )
        except Exception:
            metering.failed("recording the request failed")


def _route_template(scope: Scope, root_path_before: str) -> str:
    """The matched route's template, or the raw path when no route matched.

    Starlette's Router and FastAPI's routes put the matched route in
    ``scope["route"]``; mounts extend ``scope["root_path"]`` with the part of the
    path they matched, which is prepended. An application (or a Django
    middleware) may also set ``scope["tollway.route"]`` itself.
    """
    explicit = scope.get("tollway.route")
    if isinstance(explicit, str) and explicit:
        return explicit
    route = scope.get("route")
    template = getattr(route, "path", None)
    if route is not None and isinstance(template, str):
        root_path = scope.get("root_path", "") or ""
        prefix = root_path[len(root_path_before) :] if root_path.startswith(root_path_before) else ""
        if _Mount is not None and isinstance(route, _Mount):
            # A mount whose app is not a router (static files, a mounted WSGI app):
            # the mount's own matched path is already in the prefix.
            return prefix + "/{path}"
        return prefix + template
    return str(scope.get("path", ""))


def _content_length(scope: Scope) -> int:
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            try:
                return max(0, int(value))
            except ValueError:
                return 0
    return 0
