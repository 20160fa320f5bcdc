"""Console sign-in: a session cookie and CSRF tokens.

- The cookie ``tollway_console`` holds a random token (only its hash is stored; see
  :mod:`tollway.operator.service`); it is ``HttpOnly``, ``SameSite=Lax``, scoped to ``/console``,
  and ``Secure`` when the request came over https.
- Every state-changing form carries the session's synchronizer token (``csrf_token``); htmx sends
  it as the ``X-CSRF-Token`` header. A POST without the right token is refused (403) and changes
  nothing. The sign-in form, before any session exists, uses a double-submit token: a random value
  in a short-lived cookie that the form must echo.
- Console POSTs are admitted by the API's admission gate (:mod:`tollway.auth.gate`) before their
  body is read: without a live session they are refused (401); the sign-in form's body is bounded.
- Anonymous requests for a page are redirected to the sign-in page (``303``), keeping where they
  were going in ``next`` (only local ``/console`` paths are followed).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse, Response

from tollway.auth.gate import Access, Caller, declare, unauthenticated
from tollway.errors import TollwayError, Unauthorized
from tollway.kit.time import utcnow
from tollway.operator.service import SignedIn, csrf_ok, current_session

COOKIE = "tollway_console"
SIGN_IN_CSRF_COOKIE = "tollway_console_signin"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
PATH = "/console"


class SignInRequired(Exception):
    """Raised by :func:`require_operator`; the app turns it into a redirect to the sign-in page."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class CsrfRefused(TollwayError):
    status = 403
    code = "csrf_refused"


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def safe_next(value: str | None) -> str:
    """Only a path inside the console (no scheme, no host, no ``//``) is followed after sign-in."""
    if value and value.startswith(PATH) and not value.startswith("//") and "\\" not in value:
        return value
    return PATH


def operator_session(request: Request) -> SignedIn | None:
    with request.app.state.sessionmaker() as session:
        return current_session(session, request.cookies.get(COOKIE), now=utcnow())


def require_operator(request: Request) -> SignedIn:  # sync: the look-up runs in the threadpool
    signed_in = operator_session(request)
    if signed_in is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target if request.method == "GET" else PATH)
    return signed_in


OperatorDep = Annotated[SignedIn, Depends(require_operator)]


async def require_csrf(request: Request, operator: OperatorDep) -> SignedIn:
    """For every POST of the console: the session's CSRF token in the form or the header."""
    submitted = request.headers.get(CSRF_HEADER)
    if submitted is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    if not csrf_ok(operator, submitted):
        raise CsrfRefused("the form's CSRF token is missing or wrong: reload the page and try again")
    return operator


def _console_caller(request: Request) -> Caller:
    """Admission of a console POST (by the gate, before its body is read): a live session."""
    signed_in = operator_session(request)
    if signed_in is None:
        raise Unauthorized("sign in to the console first")
    return Caller(f"operator:{signed_in.operator_id}")


declare(require_csrf, Access(authenticate=_console_caller))
CsrfDep = Annotated[SignedIn, Depends(require_csrf)]


async def console_form(request: Request) -> FormData:
    """The posted form, read on the event loop (the body is awaited) so that the handler itself
    can be a plain ``def``: FastAPI runs those in the threadpool. A handler that is ``async`` and
    uses the database blocks the event loop for every query, and on SQLite, where a transaction
    waits for the write lock (``BEGIN IMMEDIATE``), a request holding that lock in the threadpool
    then cannot finish (its response goes through the blocked loop): both wait until the busy
    timeout (30 s) fails one of them."""
    return await request.form()


FormDep = Annotated[FormData, Depends(console_form)]
SIGN_IN_ADMISSION = unauthenticated("console:sign-in")
"""The sign-in form has no session yet: the gate only bounds its body."""


def sign_in_redirect(exc: SignInRequired) -> RedirectResponse:
    return RedirectResponse(f"{PATH}/sign-in?next={quote(exc.next_path, safe='/')}", status_code=303)


def set_session_cookie(response: Response, request: Request, token: str, max_age: int) -> None:
    response.set_cookie(
        COOKIE, token, max_age=max_age, path=PATH, httponly=True, samesite="lax", secure=is_https(request)
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path=PATH, httponly=True, samesite="lax", secure=is_https(request))


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(24)


def set_sign_in_cookie(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE, token, max_age=3600, path=PATH, httponly=True, samesite="strict", secure=is_https(request)
    )


def sign_in_token_ok(request: Request, submitted: str | None) -> bool:
    expected = request.cookies.get(SIGN_IN_CSRF_COOKIE)
    return bool(expected and submitted) and hmac.compare_digest(str(expected).encode(), str(submitted).encode())
