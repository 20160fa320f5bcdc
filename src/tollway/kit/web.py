"""HTTP hygiene as ASGI middleware: one access-log line per request, security headers.

Access log: ``tollway.access`` logs ``METHOD /route/{template} STATUS DURATIONms`` once per
request. The route template comes from the admission gate (``auth.gate.ROUTE_KEY``), so ids,
keys and tokens in paths never reach the log, and query strings are never logged.

Security headers: every response gets ``X-Content-Type-Options: nosniff``; HTML responses also
get ``Referrer-Policy`` and :data:`DEFAULT_CSP` unless the response already carries its own
``Content-Security-Policy`` — a route overrides the policy by setting the header itself (build
one with :func:`csp`, e.g. ``csp(frame_ancestors="https://app.example.com")``).
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollway.auth.gate import ROUTE_KEY

access_log = logging.getLogger("tollway.access")

CSP_DEFAULTS: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}


def csp(**directives: str) -> str:
    """A Content-Security-Policy: the defaults with ``directives`` replaced or added
    (``frame_ancestors="https://a.example"`` sets ``frame-ancestors``)."""
    merged = {**CSP_DEFAULTS, **{k.replace("_", "-"): v for k, v in directives.items()}}
    return "; ".join(f"{k} {v}" for k, v in merged.items())


DEFAULT_CSP = csp()


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                content_type = next((v for k, v in headers if k.lower() == b"content-type"), b"")
                if b"x-content-type-options" not in names:
                    headers.append((b"x-content-type-options", b"nosniff"))
                if content_type.startswith(b"text/html"):
                    if b"content-security-policy" not in names:
                        headers.append((b"content-security-policy", DEFAULT_CSP.encode()))
                    if b"referrer-policy" not in names:
                        headers.append((b"referrer-policy", b"same-origin"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class AccessLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            access_log.info(
                "%s %s %d %.1fms",
                scope["method"],
                scope.get(ROUTE_KEY) or "(no route)",
                status or 500,
                (time.perf_counter() - started) * 1000,
            )
