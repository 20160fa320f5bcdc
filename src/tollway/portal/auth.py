"""The portal's own admission: a live portal session token (``Authorization: Bearer pt_…``),
checked by the admission gate (``auth.gate``) before the body is read, like API keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tollway.auth.dependencies import bearer_token
from tollway.auth.gate import Access, admitted, declare
from tollway.errors import Unauthorized
from tollway.kit.inputs import check_request
from tollway.kit.time import utcnow
from tollway.portal.errors import PORTAL_CHALLENGE, SelfServiceDisabled
from tollway.portal.tokens import PortalPrincipal, lookup
from tollway.settings.service import get_provider_settings


def portal_principal(request: Request) -> PortalPrincipal:  # sync: the look-up runs in the threadpool
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("missing portal session token (Authorization: Bearer pt_…)", headers=PORTAL_CHALLENGE)
    with request.app.state.sessionmaker() as session:
        principal = lookup(session, token, now=utcnow())
    if principal is None:
        raise Unauthorized("invalid, expired or revoked portal session token", headers=PORTAL_CHALLENGE)
    return principal


# Declares the portal's bearer scheme in the OpenAPI document; authentication is the gate's.
portal_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="portalToken",
    description="A portal session token (`Authorization: Bearer pt_…`), from `POST /v1/customers/{id}/portal-sessions`",
)


async def require_portal(
    request: Request, _: Annotated[HTTPAuthorizationCredentials | None, Depends(portal_scheme)]
) -> PortalPrincipal:
    """The principal the admission gate found for the token (before the body was read)."""
    principal: PortalPrincipal = admitted(request)
    await check_request(request)
    return principal


declare(require_portal, Access(authenticate=portal_principal))


def require_self_service(request: Request, principal: PortalPrincipal = Depends(require_portal)) -> PortalPrincipal:
    """Self-service needs a ``subscribe`` session and ``settings.portal.self_service`` on."""
    if not principal.can_subscribe:
        raise SelfServiceDisabled("this portal session may only read (it lacks the 'subscribe' permission)")
    with request.app.state.sessionmaker() as session:
        enabled = get_provider_settings(session).portal.self_service
    if not enabled:
        raise SelfServiceDisabled("self-service is turned off (settings.portal.self_service)")
    return principal
