"""The console's routes and its one exception handler (anonymous page requests → sign-in)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.responses import Response

from tollway.web.console import admin, billing, customers, keys, overview, plans, signin, webhooks
from tollway.web.console.auth import SignInRequired, sign_in_redirect

ROUTERS = [
    signin.router,
    overview.router,
    customers.router,
    plans.router,
    billing.router,
    admin.router,
    webhooks.router,
    keys.router,
]


def install(app: FastAPI) -> None:
    """Mount the console's pages on ``app``."""

    async def to_sign_in(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, SignInRequired)
        return sign_in_redirect(exc)

    app.add_exception_handler(SignInRequired, to_sign_in)
    for router in ROUTERS:
        app.include_router(router)
