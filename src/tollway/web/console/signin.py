"""Sign-in and sign-out pages."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tollway.db import session_scope
from tollway.kit.time import utcnow
from tollway.operator.errors import SignInRefused
from tollway.operator.service import SESSION_LIFETIME, sign_in, sign_out
from tollway.web.console.auth import (
    COOKIE,
    PATH,
    SIGN_IN_ADMISSION,
    CsrfDep,
    clear_session_cookie,
    new_sign_in_token,
    operator_session,
    safe_next,
    set_session_cookie,
    set_sign_in_cookie,
    sign_in_token_ok,
)
from tollway.web.console.common import console_page

router = APIRouter(include_in_schema=False)


def _form(
    request: Request, *, next_path: str, email: str = "", error: str | None = None, status: int = 200
) -> Response:
    token = new_sign_in_token()
    response = console_page("console/sign_in.html", None, next_path=next_path, email=email, error=error,
                            status_code=status, sign_in_token=token)  # fmt: skip
    set_sign_in_cookie(response, request, token)
    return response


@router.get("/console/sign-in", response_class=HTMLResponse)
def sign_in_page(request: Request, next: str | None = None) -> Response:
    if operator_session(request) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, next_path=safe_next(next))


@router.post("/console/sign-in", response_class=HTMLResponse, dependencies=[Depends(SIGN_IN_ADMISSION)])
def sign_in_submit(
    request: Request,
    email: str = Form(default="", max_length=320),
    password: str = Form(default="", max_length=1024),
    next: str = Form(default=PATH, max_length=2000),
    sign_in_token: str = Form(default="", max_length=200),
) -> Response:
    target = safe_next(next)
    if not sign_in_token_ok(request, sign_in_token):
        return _form(request, next_path=target, email=email, status=403,
                     error="This form expired or was not sent from this page: please sign in again.")  # fmt: skip
    refused: SignInRefused | None = None
    # The failed attempt is committed too: it counts towards the lockout.
    with session_scope(request.app.state.sessionmaker) as session:
        try:
            signed = sign_in(session, email=email, password=password, now=utcnow())
        except SignInRefused as exc:
            refused = exc
    if refused is not None:
        return _form(request, next_path=target, email=email, error=refused.message, status=401)
    response = RedirectResponse(target, status_code=303)
    set_session_cookie(response, request, signed.session_id, int(SESSION_LIFETIME.total_seconds()))
    return response


@router.post("/console/sign-out")
def sign_out_submit(request: Request, operator: CsrfDep) -> Response:
    with session_scope(request.app.state.sessionmaker) as session:
        sign_out(session, request.cookies.get(COOKIE), now=utcnow())
    response = RedirectResponse(f"{PATH}/sign-in", status_code=303)
    clear_session_cookie(response, request)
    return response
