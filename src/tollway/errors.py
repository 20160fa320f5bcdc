"""One error type for the domain and one place that turns errors into RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

log = logging.getLogger("tollway.errors")

PROBLEM_JSON = "application/problem+json"


class FieldError:
    __slots__ = ("field", "message")

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class TollwayError(Exception):
    """A domain error with an HTTP status, a stable code and a human message."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        errors: Sequence[FieldError] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code
        self.errors = list(errors)
        self.headers = headers


class NotFound(TollwayError):
    status = 404
    code = "not_found"


class Conflict(TollwayError):
    status = 409
    code = "conflict"


class ValidationFailed(TollwayError):
    status = 422
    code = "validation_failed"

    def __init__(self, message: str, errors: Sequence[FieldError] = (), **kw: Any) -> None:
        super().__init__(message, errors=errors, **kw)

    @classmethod
    def field(cls, field: str, message: str) -> ValidationFailed:
        return cls(f"{field}: {message}", [FieldError(field, message)])


class Unauthorized(TollwayError):
    status = 401
    code = "unauthorized"


class Forbidden(TollwayError):
    status = 403
    code = "forbidden"


class PayloadTooLarge(TollwayError):
    status = 413
    code = "payload_too_large"


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    code: str | None = None,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:tollway:problem:{code}" if code else "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        "errors": [e.as_dict() for e in errors],
    }
    try:
        content = orjson.dumps(body)
    except TypeError:  # a message quoting input that is not valid Unicode (a lone surrogate)
        content = orjson.dumps(_printable(body))
    return Response(content, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _printable(value: Any) -> Any:
    """``value`` with every string made valid UTF-8 (unencodable characters become U+FFFD)."""
    if isinstance(value, str):
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_printable(v) for v in value]
    return value


def title_of(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _loc_to_field(loc: Sequence[Any]) -> str:
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out or "body"


def validation_errors_from_pydantic(errs: Sequence[Any]) -> list[FieldError]:
    out = []
    for e in errs:
        if e.get("type") == "json_invalid":  # FastAPI's loc is ("body", <offset>): name the body
            position = next((p for p in e.get("loc", ())[1:] if isinstance(p, int)), None)
            where = f" at character {position}" if position is not None else ""
            reason = (e.get("ctx") or {}).get("error") or "invalid"
            out.append(FieldError("body", f"malformed JSON{where}: {reason}"))
            continue
        msg = str(e.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append(FieldError(_loc_to_field(e.get("loc", ())), msg))
    return out


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TollwayError)
    async def _tollway(_: Request, exc: TollwayError) -> Response:
        return problem_response(
            exc.status, title_of(exc.status), exc.message, code=exc.code, errors=exc.errors, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        errors = validation_errors_from_pydantic(exc.errors())
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors) or "invalid request"
        return problem_response(422, title_of(422), detail, code="validation_failed", errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        # The framework's own 400 is a body its JSON parser gave up on (nested too deep, an
        # integer too long to convert): name the body.
        errors = [FieldError("body", str(exc.detail))] if exc.status_code == 400 else []
        return problem_response(
            exc.status_code,
            title_of(exc.status_code),
            str(exc.detail),
            errors=errors,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> Response:
        # A concurrent request created the same resource first (unique id): report a conflict.
        log.info("integrity error mapped to 409: %s", exc.orig)
        return problem_response(
            409,
            title_of(409),
            "a resource with this id or key already exists (concurrent create?)",
            code="conflict",
        )

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:  # pragma: no cover - defensive
        log.exception("unhandled error", exc_info=exc)
        return problem_response(500, title_of(500), "internal error; the failure was logged", code="internal")
