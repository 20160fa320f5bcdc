"""FastAPI dependencies that admit a request: authenticate the bearer key, check its scope, then
refuse input no backend can store (``kit.inputs``), in that order, so that a caller without a
valid key learns nothing about its input. Every API route depends on one of them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request

from tollway.auth.keys import Principal
from tollway.errors import Forbidden, Unauthorized
from tollway.kit.inputs import check_request
from tollway.kit.time import utcnow
from tollway.portal.errors import PortalTokenNotAllowed
from tollway.portal.tokens import TOKEN_PREFIX, lookup

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="tollway"'}


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(request: Request) -> Principal:
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing bearer API key (Authorization: Bearer <key>)", headers=_CHALLENGE)
    factory = request.app.state.sessionmaker
    with factory() as session:
        principal: Principal | None = request.app.state.key_cache.lookup(session, token)
    if principal is None:
        if is_live_portal_token(request, token):
            raise PortalTokenNotAllowed()
        raise Unauthorized("invalid or revoked API key", headers=_CHALLENGE)
    return principal


def is_live_portal_token(request: Request, token: str) -> bool:
    """A customer-portal session token (``pt_…``) that is valid: it may call only ``/v1/portal/``."""
    if not token.startswith(TOKEN_PREFIX):
        return False
    with request.app.state.sessionmaker() as session:
        return lookup(session, token, now=utcnow()) is not None


def require_scope(*allowed: str) -> Callable[..., Awaitable[Principal]]:
    """Admin keys may do everything; other scopes only what the route allows."""

    def authorize(request: Request) -> Principal:  # sync: the key look-up runs in the threadpool
        principal = authenticate(request)
        if principal.scope != "admin" and principal.scope not in allowed:
            raise Forbidden(f"this API key's scope '{principal.scope}' does not allow this operation")
        return principal

    async def admit(request: Request, principal: Principal = Depends(authorize)) -> Principal:
        await check_request(request)
        return principal

    return admit


require_admin = require_scope("admin")
require_ingest = require_scope("ingest")
