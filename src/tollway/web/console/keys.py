"""API keys: the list (never a key: its first characters only), create (the key shown once, on
the page that answers the form), revoke after a confirmation.

Through :mod:`tollway.auth.keys`, the service of ``/v1/api-keys`` and ``tollway keys``; rows are
shown as the API's schema (:func:`tollway.auth.endpoints.to_schema`). An ingest key may be
limited to one customer, as ``tollway keys create --customer`` does.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tollway.auth import keys
from tollway.auth.endpoints import to_schema
from tollway.auth.schemas import ApiKeyCreate
from tollway.customer.service import get_customer
from tollway.deps import SessionDep
from tollway.errors import FieldError, TollwayError, ValidationFailed, validation_errors_from_pydantic
from tollway.kit.listing import list_params
from tollway.kit.pagination import encode_cursor
from tollway.kit.time import utcnow
from tollway.models import ApiKey
from tollway.operator.service import SignedIn
from tollway.web.console.auth import CsrfDep, FormDep, OperatorDep
from tollway.web.console.common import console_page, error_text, form_text

router = APIRouter(include_in_schema=False)
PAGE = 100


def _view(row: ApiKey) -> dict[str, Any]:
    return {**to_schema(row).model_dump(), "customer": row.customer}


def _page(
    operator: SignedIn,
    session: Session,
    *,
    after: str | None = None,
    values: dict[str, str] | None = None,
    errors: list[FieldError] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    after = list_params(PAGE, after).after  # a cursor we did not issue: a 422 naming `after`
    rows = list(keys.list_keys(session, limit=PAGE, after=after))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return console_page(
        "console/api_keys.html",
        operator,
        active="api-keys",
        keys=[_view(r) for r in rows],
        next_after=encode_cursor(rows[-1].id) if more and rows else None,
        values=values or {"scope": "ingest"},
        errors=errors or [],
        message=message,
        status_code=status_code,
    )


@router.get("/console/api-keys", response_class=HTMLResponse)
def keys_page(
    operator: OperatorDep,
    session: SessionDep,
    after: str | None = Query(default=None, max_length=300),
    revoked: str | None = Query(default=None, max_length=100),
) -> HTMLResponse:
    message = f"Key {revoked} revoked: requests with it are refused from now on." if revoked else None
    try:
        return _page(operator, session, after=after, message=message)
    except TollwayError as exc:
        return _page(operator, session, errors=exc.errors or [FieldError("after", exc.message)], status_code=exc.status)


@router.post("/console/api-keys", response_model=None)
def create_key(operator: CsrfDep, form: FormDep, session: SessionDep) -> Response:
    values = {name: form_text(form, name) for name in ("scope", "name", "customer")}
    customer = values["customer"] or None
    try:
        body = ApiKeyCreate.model_validate({"scope": values["scope"], "name": values["name"] or None})
        if customer is not None:
            if body.scope != "ingest":
                raise ValidationFailed.field("customer", "only ingest keys can be limited to one customer")
            get_customer(session, customer)
        with session.begin_nested():
            row, secret = keys.create_key(session, scope=body.scope, name=body.name, customer=customer)
    except ValidationError as exc:
        errors = validation_errors_from_pydantic(exc.errors())
        return _page(operator, session, values=values, errors=errors, status_code=422)
    except TollwayError as exc:
        field = "customer" if customer is not None and exc.status == 404 else "key"
        errors = exc.errors or [FieldError(field, exc.message)]
        return _page(operator, session, values=values, errors=errors, status_code=exc.status)
    response = console_page("console/api_key_created.html", operator, active="api-keys", key=_view(row),
                            secret=secret)  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/console/api-keys/{key_id}/revoke", response_model=None)
def revoke_key(key_id: str, operator: CsrfDep, form: FormDep, session: SessionDep) -> Response:
    """Revoke after the operator confirmed (the form's ``confirm`` box): refused at once."""
    if form.get("confirm") != "yes":
        error = FieldError("confirm", f"tick the box to confirm revoking {key_id}: it cannot be undone")
        return _page(operator, session, errors=[error], status_code=422)
    try:
        with session.begin_nested():
            keys.revoke_key(session, key_id, now=utcnow())
    except TollwayError as exc:
        return _page(operator, session, errors=[FieldError("key", error_text(exc))], status_code=exc.status)
    return RedirectResponse(f"/console/api-keys?revoked={quote(key_id)}", status_code=303)
