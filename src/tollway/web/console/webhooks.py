"""Webhooks: the endpoints (create, enable/disable, rotate the signing secret, delete) and each
endpoint's delivery log with a retry button.

Every action goes through :mod:`tollway.notification.service`, the functions behind
``/v1/webhook-endpoints`` and ``/v1/webhook-deliveries/{id}/retry``; rows are shown as the API's
schemas (:mod:`tollway.notification.endpoints`). A signing secret is shown once, on the page that
answers the create or rotate form (never in a URL). Without ``TOLLWAY_SECRET_KEY`` the secrets
cannot be encrypted: the page says so and offers no form that needs it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tollway.config import Settings
from tollway.deps import SessionDep
from tollway.errors import FieldError, TollwayError, validation_errors_from_pydantic
from tollway.kit.crypto import SecretKeyMissing, configured_secret
from tollway.kit.listing import list_params
from tollway.kit.pagination import encode_cursor
from tollway.kit.time import utcnow
from tollway.notification import service
from tollway.notification.endpoints import delivery_schema, to_schema
from tollway.notification.events import EVENT_TYPES
from tollway.notification.schemas import WebhookEndpointCreate, WebhookEndpointUpdate
from tollway.operator.service import SignedIn
from tollway.web.console.auth import CsrfDep, FormDep, OperatorDep
from tollway.web.console.common import console_page, error_text, form_text

router = APIRouter(include_in_schema=False)
PAGE = 100
DELIVERIES_PAGE = 50


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def secret_key_problem(settings: Settings) -> str | None:
    """Why signing secrets cannot be created or rotated now, or None."""
    try:
        configured_secret(settings.secret_key)
    except SecretKeyMissing as exc:
        return exc.message
    return None


def _list_page(
    operator: SignedIn,
    session: Session,
    settings: Settings,
    *,
    after: str | None = None,
    values: dict[str, Any] | None = None,
    errors: list[FieldError] | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    after = list_params(PAGE, after).after  # a cursor we did not issue: a 422 naming `after`
    rows = service.list_endpoints(session, limit=PAGE, after=after)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    return console_page(
        "console/webhooks.html",
        operator,
        active="webhooks",
        endpoints=[to_schema(r) for r in rows],
        next_after=encode_cursor(rows[-1].id) if more and rows else None,
        event_types=EVENT_TYPES,
        key_problem=secret_key_problem(settings),
        values=values or {"event_types": []},
        errors=errors or [],
        message=message,
        status_code=status_code,
    )


@router.get("/console/webhooks", response_class=HTMLResponse)
def webhooks_page(
    request: Request,
    operator: OperatorDep,
    session: SessionDep,
    after: str | None = Query(default=None, max_length=300),
    deleted: str | None = Query(default=None, max_length=200),
) -> HTMLResponse:
    try:
        return _list_page(operator, session, _settings(request), after=after,
                          message=f"Endpoint {deleted} deleted." if deleted else None)  # fmt: skip
    except TollwayError as exc:  # a cursor that is not one
        errors = exc.errors or [FieldError("after", exc.message)]
        return _list_page(operator, session, _settings(request), errors=errors, status_code=exc.status)


def body_from_form(form: FormData) -> dict[str, Any]:
    """The ``POST /v1/webhook-endpoints`` body the form describes: no event type ticked = all."""
    types = [t for t in form.getlist("event_types") if isinstance(t, str)]
    return {
        "id": form_text(form, "id"),
        "url": form_text(form, "url"),
        "event_types": types or None,
        "description": form_text(form, "description") or None,
    }


def _secret_page(operator: SignedIn, endpoint: Any, secret: str, *, rotated: bool) -> HTMLResponse:
    response = console_page("console/webhook_secret.html", operator, active="webhooks", endpoint=endpoint,
                            secret=secret, rotated=rotated)  # fmt: skip
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/console/webhooks", response_model=None)
def create_endpoint(request: Request, operator: CsrfDep, form: FormDep, session: SessionDep) -> Response:
    settings = _settings(request)
    body = body_from_form(form)
    values = {**body, "event_types": body["event_types"] or []}
    try:
        data = WebhookEndpointCreate.model_validate(body)
        with session.begin_nested():
            row, secret = service.create_endpoint(
                session, data, secret_key=settings.secret_key, allow_private=settings.webhook_allow_private_urls
            )
    except ValidationError as exc:
        errors = validation_errors_from_pydantic(exc.errors())
        return _list_page(operator, session, settings, values=values, errors=errors, status_code=422)
    except TollwayError as exc:
        errors = exc.errors or [FieldError("endpoint", exc.message)]
        return _list_page(operator, session, settings, values=values, errors=errors, status_code=exc.status)
    return _secret_page(operator, to_schema(row), secret, rotated=False)


def _endpoint_page(
    operator: SignedIn,
    session: Session,
    settings: Settings,
    endpoint_id: str,
    *,
    after: str | None = None,
    error: str | None = None,
    message: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    try:
        row = service.get_endpoint(session, endpoint_id)
        deliveries = service.list_deliveries(session, endpoint_id, limit=DELIVERIES_PAGE, after=after)
    except TollwayError as exc:
        return console_page("console/message.html", operator, active="webhooks", error=error_text(exc),
                            status_code=exc.status)  # fmt: skip
    more = len(deliveries) > DELIVERIES_PAGE
    deliveries = deliveries[:DELIVERIES_PAGE]
    return console_page(
        "console/webhook.html",
        operator,
        active="webhooks",
        endpoint=to_schema(row),
        deliveries=[delivery_schema(d) for d in deliveries],
        next_after=encode_cursor(str(deliveries[-1].id)) if more and deliveries else None,
        key_problem=secret_key_problem(settings),
        error=error,
        message=message,
        status_code=status_code,
    )


@router.get("/console/webhooks/{endpoint_id}", response_class=HTMLResponse)
def endpoint_page(
    endpoint_id: str,
    request: Request,
    operator: OperatorDep,
    session: SessionDep,
    after: str | None = Query(default=None, max_length=300),
    retried: str | None = Query(default=None, max_length=40),
) -> HTMLResponse:
    message = f"Delivery {retried} is queued: the worker attempts it again on its next pass." if retried else None
    return _endpoint_page(operator, session, _settings(request), endpoint_id, after=after, message=message)


@router.post("/console/webhooks/{endpoint_id}/status", response_model=None)
def set_status(endpoint_id: str, request: Request, operator: CsrfDep, form: FormDep, session: SessionDep) -> Response:
    """Enable (forgets the failure streak, resumes pending deliveries) or disable, like
    ``PATCH /v1/webhook-endpoints/{id}`` with ``status``."""
    settings = _settings(request)
    try:
        change = WebhookEndpointUpdate.model_validate({"status": form_text(form, "status")})
        with session.begin_nested():
            service.update_endpoint(session, endpoint_id, change, allow_private=settings.webhook_allow_private_urls,
                                    now=utcnow())  # fmt: skip
    except ValidationError as exc:
        error = "; ".join(f"{e.field}: {e.message}" for e in validation_errors_from_pydantic(exc.errors()))
        return _endpoint_page(operator, session, settings, endpoint_id, error=error, status_code=422)
    except TollwayError as exc:
        return _endpoint_page(operator, session, settings, endpoint_id, error=error_text(exc), status_code=exc.status)
    return RedirectResponse(f"/console/webhooks/{quote(endpoint_id)}", status_code=303)


@router.post("/console/webhooks/{endpoint_id}/rotate-secret", response_model=None)
def rotate_secret(endpoint_id: str, request: Request, operator: CsrfDep, session: SessionDep) -> Response:
    settings = _settings(request)
    try:
        with session.begin_nested():
            row, secret = service.rotate_secret(session, endpoint_id, secret_key=settings.secret_key)
    except TollwayError as exc:
        return _endpoint_page(operator, session, settings, endpoint_id, error=error_text(exc), status_code=exc.status)
    return _secret_page(operator, to_schema(row), secret, rotated=True)


@router.post("/console/webhooks/{endpoint_id}/delete", response_model=None)
def delete_endpoint(
    endpoint_id: str, request: Request, operator: CsrfDep, form: FormDep, session: SessionDep
) -> Response:
    """Delete after the operator confirmed (the form's ``confirm`` box): the endpoint and its
    delivery log are gone."""
    settings = _settings(request)
    if form.get("confirm") != "yes":
        error = "tick the box to confirm: the endpoint and its delivery log are deleted"
        return _endpoint_page(operator, session, settings, endpoint_id, error=error, status_code=422)
    try:
        with session.begin_nested():
            service.delete_endpoint(session, endpoint_id)
    except TollwayError as exc:
        return _endpoint_page(operator, session, settings, endpoint_id, error=error_text(exc), status_code=exc.status)
    return RedirectResponse(f"/console/webhooks?deleted={quote(endpoint_id)}", status_code=303)


@router.post("/console/webhook-deliveries/{delivery_id}/retry", response_model=None)
def retry_delivery(delivery_id: str, operator: CsrfDep, session: SessionDep) -> Response:
    """Attempt again at once with a fresh retry schedule (``POST /v1/webhook-deliveries/{id}/retry``)."""
    try:
        with session.begin_nested():
            row = service.retry_delivery(session, delivery_id, now=utcnow())
    except TollwayError as exc:
        return console_page("console/message.html", operator, active="webhooks", error=error_text(exc),
                            status_code=exc.status)  # fmt: skip
    return RedirectResponse(f"/console/webhooks/{quote(row.endpoint_id)}?retried={quote(delivery_id)}", status_code=303)
