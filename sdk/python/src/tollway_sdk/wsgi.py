"""WSGI middleware (Flask, Django, any PEP 3333 app): one Tollway event per request.

    app.wsgi_app = TollwayWSGIMiddleware(app.wsgi_app, client, identify=...)      # Flask
    application = TollwayWSGIMiddleware(get_wsgi_application(), client, ...)     # Django

The event is recorded when the server closes the response iterable (PEP 3333
guarantees ``close()``), so ``duration_ms`` and ``response_bytes`` cover a
streamed body in full.

Route template: Flask/Werkzeug put their request object in
``environ["werkzeug.request"]`` while the request is handled; the middleware
reads ``request.url_rule.rule`` (e.g. ``/v1/users/<int:user_id>``) from it.
Django exposes no such thing to WSGI: set ``request.environ["tollway.route"] =
request.resolver_match.route`` in a Django middleware, or pass ``route=``.
Otherwise the raw path is used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from tollway_sdk.middleware import Identify, Metering, PropertiesHook, RouteHook, Tracker

__all__ = ["TollwayWSGIMiddleware", "WSGIRequest"]

Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class _Headers(Mapping[str, str]):
    """Case-insensitive read-only view of the request headers in a WSGI environ."""

    def __init__(self, environ: Environ) -> None:
        self._items: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                self._items[key[5:].replace("_", "-").lower()] = value
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                self._items[key.replace("_", "-").lower()] = value

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items


class WSGIRequest:
    """Request view given to hooks when the framework left no request object in the environ."""

    def __init__(self, environ: Environ) -> None:
        self.environ = environ
        self.method: str = environ.get("REQUEST_METHOD", "")
        self.path: str = (environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or "")
        self.query_string: str = environ.get("QUERY_STRING", "")
        self.headers = _Headers(environ)


class _Exchange:
    __slots__ = ("closed", "native", "request_bytes", "response_bytes", "response_headers", "started", "status")

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.status = 0
        self.request_bytes = 0
        self.response_bytes = 0
        self.response_headers: list[tuple[str, str]] = []
        self.native: Any = None
        self.closed = False


class _CountingInput:
    """Wraps ``wsgi.input`` when there is no Content-Length (chunked uploads)."""

    def __init__(self, stream: Any, exchange: _Exchange) -> None:
        self._stream = stream
        self._exchange = exchange

    def read(self, *args: Any) -> bytes:
        data: bytes = self._stream.read(*args)
        self._exchange.request_bytes += len(data)
        return data

    def readline(self, *args: Any) -> bytes:
        data: bytes = self._stream.readline(*args)
        self._exchange.request_bytes += len(data)
        return data

    def readlines(self, *args: Any) -> list[bytes]:
        lines: list[bytes] = self._stream.readlines(*args)
        self._exchange.request_bytes += sum(len(line) for line in lines)
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._exchange.request_bytes += len(line)
            yield line

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class TollwayWSGIMiddleware:
    """Meters every request of a WSGI app. Hooks as for :class:`TollwayASGIMiddleware`.

    ``identify(request)`` gets the framework's request object when it left one in
    the environ (Flask/Werkzeug: ``environ["werkzeug.request"]``), otherwise a
    :class:`WSGIRequest` (``method``, ``path``, ``headers``, ``environ``). With
    ``enforce_limits=True``, ``identify`` runs before the app too (on a :class:`WSGIRequest`,
    the framework has not made its own yet) and a request Tollway refuses is answered 429
    ``application/problem+json`` with ``Retry-After``, as for the ASGI middleware.
    """

    def __init__(
        self,
        app: WSGIApp,
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

    def _refused(self, environ: Environ, start_response: StartResponse) -> list[bytes] | None:
        metering = self._metering
        try:
            customer = metering.customer_of(WSGIRequest(environ))
            if customer is None:
                return None
            decision = metering.client.limits.decide(customer, metering.limits_meter)
            if decision.allowed:
                return None
            status, headers, body = metering.refusal(decision)
        except Exception:
            metering.failed("checking limits failed (request let through)")
            return None
        reason = "Too Many Requests" if status == 429 else "Service Unavailable"
        start_response(f"{status} {reason}", headers)
        return [body]

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if self._metering.enforce_limits:
            refused = self._refused(environ, start_response)
            if refused is not None:
                return refused
        exchange = _Exchange()
        try:
            length = environ.get("CONTENT_LENGTH")
            if length:
                exchange.request_bytes = max(0, int(length))
            elif environ.get("wsgi.input") is not None:
                environ["wsgi.input"] = _CountingInput(environ["wsgi.input"], exchange)
        except Exception:
            self._metering.failed("reading the request size failed")

        def start_response_counting(status: str, headers: list[tuple[str, str]], *exc_info: Any) -> Any:
            try:
                exchange.status = int(status.split(" ", 1)[0])
                exchange.response_headers = headers
                # Flask pops its request context before the body is iterated:
                # catch the request object while it is still in the environ.
                native = environ.get("werkzeug.request")
                if native is not None:
                    exchange.native = native
            except Exception:
                self._metering.failed("reading the response status failed")
            write = start_response(status, headers, *exc_info)

            def write_counting(data: bytes) -> object:
                exchange.response_bytes += len(data)
                return write(data)

            return write_counting

        try:
            result = self.app(environ, start_response_counting)
        except BaseException:
            self._record(environ, exchange, error=True)
            raise
        return _MeteredBody(result, self, environ, exchange)

    def _record(self, environ: Environ, exchange: _Exchange, *, error: bool = False) -> None:
        if exchange.closed:
            return
        exchange.closed = True
        metering = self._metering
        try:
            seconds = time.perf_counter() - exchange.started
            native = exchange.native or environ.get("werkzeug.request")
            request = native if native is not None else WSGIRequest(environ)
            route = metering.custom_route(request) or _route_template(environ, native)
            status = exchange.status or (500 if error else 0)
            response_headers = exchange.response_headers
            metering.emit(
                request,
                method=environ.get("REQUEST_METHOD", ""),
                route=route,
                status=status,
                duration_ms=seconds * 1000.0,
                request_bytes=exchange.request_bytes,
                response_bytes=exchange.response_bytes,
                headers=lambda: {k.lower(): v for k, v in response_headers},
                error=error,
            )
        except Exception:
            metering.failed("recording the request failed")


class _MeteredBody:
    """The app's response iterable, counted chunk by chunk; records the event on close()."""

    def __init__(self, result: Iterable[bytes], owner: TollwayWSGIMiddleware, environ: Environ, exchange: _Exchange):
        self._result = result
        self._owner = owner
        self._environ = environ
        self._exchange = exchange

    def __iter__(self) -> Iterator[bytes]:
        exchange = self._exchange
        try:
            for chunk in self._result:
                exchange.response_bytes += len(chunk)
                yield chunk
        except BaseException:
            self._owner._record(self._environ, exchange, error=True)
            raise

    def close(self) -> None:
        try:
            close = getattr(self._result, "close", None)
            if close is not None:
                close()
        finally:
            self._owner._record(self._environ, self._exchange)


def _route_template(environ: Environ, native: Any) -> str:
    explicit = environ.get("tollway.route")
    if isinstance(explicit, str) and explicit:
        return explicit
    rule = getattr(getattr(native, "url_rule", None), "rule", None)
    if isinstance(rule, str) and rule:
        script_name = environ.get("SCRIPT_NAME") or ""
        return script_name + rule
    return (environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or "")
