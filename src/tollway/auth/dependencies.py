"""Admission of API-key routes. The gate (``auth.gate``) authenticates the bearer key and checks
its scope before the body is read; the route's dependency then returns the admitted principal
and refuses input no backend can store (``kit.inputs``). So a caller without a valid key learns
nothing about its input and costs no body parsing. Every API route depends on one of these."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tollway.auth.gate import Access, admitted, declare
from tollway.auth.keys import Principal, lookup_key_async
from tollway.errors import Forbidden, Unauthorized
from tollway.kit.inputs import check_request
from tollway.kit.time import utcnow
from tollway.portal.errors import PortalTokenNotAllowed
from tollway.portal.tokens import TOKEN_PREFIX
from tollway.portal.tokens import lookup as portal_lookup

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tollway"'}

# Declares the bearer scheme in the OpenAPI document (the /docs "Authorize" button); reads
# only the header. Authentication itself is the gate's.
bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="apiKey",
    description="An API key: `Authorization: Bearer tw_admin_…` or `tw_ingest_…`",
)


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(request: Request) -> Principal:
    """The API key's principal (one indexed look-up, awaited on PostgreSQL; a revoked key fails
    at once)."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing bearer API key (Authorization: Bearer <key>)", headers=_CHALLENGE)
    # One read, in autocommit: no transaction to end, and on SQLite no write lock to wait for.
    principal = await lookup_key_async(request.app.state.engine, token)
    if principal is None:
        if token.startswith(TOKEN_PREFIX) and await run_in_threadpool(is_live_portal_token, request, token):
            raise PortalTokenNotAllowed()
        raise Unauthorized("invalid or revoked API key", headers=_CHALLENGE)
    return principal


def is_live_portal_token(request: Request, token: str) -> bool:
    """A customer-portal session token (``pt_…``) that is valid: it may call only ``/v1/portal/``."""
    if not token.startswith(TOKEN_PREFIX):
        return False
    with request.app.state.sessionmaker() as session:
        return portal_lookup(session, token, now=utcnow()) is not None


def require_scope(*allowed: str) -> Callable[..., Awaitable[Principal]]:
    """Admin keys may do everything; other scopes only what the route allows."""

    def authorize(principal: Principal) -> None:
        if principal.scope != "admin" and principal.scope not in allowed:
            raise Forbidden(f"this API key's scope '{principal.scope}' does not allow this operation")

    async def admit(
        request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
    ) -> Principal:
        principal: Principal = admitted(request)
        await check_request(request)
        return principal

    declare(admit, Access(authenticate=authenticate, authorize=authorize))
    return admit


require_admin = require_scope("admin")
require_ingest = require_scope("ingest")
