from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from tollway.auth.dependencies import require_admin
from tollway.config import Settings
from tollway.deps import SessionDep
from tollway.kit.listing import ListParams, list_params
from tollway.kit.pagination import Page, encode_cursor
from tollway.kit.time import utcnow
from tollway.models import WebhookDelivery as DeliveryRow
from tollway.models import WebhookEndpoint as EndpointRow
from tollway.notification import service
from tollway.notification.schemas import (
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
)

router = APIRouter(tags=["webhooks"], dependencies=[Depends(require_admin)])


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(_settings)]


def to_schema(row: EndpointRow) -> WebhookEndpoint:
    return WebhookEndpoint(
        id=row.id,
        url=row.url,
        event_types=row.event_types,
        description=row.description,
        status=row.status,  # type: ignore[arg-type]
        disabled_reason=row.disabled_reason,
        consecutive_failures=row.consecutive_failures,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def with_secret(row: EndpointRow, secret: str) -> WebhookEndpointWithSecret:
    return WebhookEndpointWithSecret(**to_schema(row).model_dump(), secret=secret)


def delivery_schema(row: DeliveryRow) -> WebhookDelivery:
    return WebhookDelivery(
        id=service.delivery_public_id(row),
        endpoint=row.endpoint_id,
        message_id=service.message_public_id(row.message_id),
        type=row.type,
        status=row.status,  # type: ignore[arg-type]
        attempts=row.attempts,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        last_duration_ms=row.last_duration_ms,
        last_attempt_at=row.last_attempt_at,
        next_attempt_at=row.next_attempt_at,
        delivered_at=row.delivered_at,
        created_at=row.created_at,
    )


@router.post("/v1/webhook-endpoints", status_code=201, response_model=WebhookEndpointWithSecret)
def create_endpoint(
    body: WebhookEndpointCreate, session: SessionDep, settings: SettingsDep
) -> WebhookEndpointWithSecret:
    row, secret = service.create_endpoint(
        session, body, secret_key=settings.secret_key, allow_private=settings.webhook_allow_private_urls
    )
    return with_secret(row, secret)


@router.get("/v1/webhook-endpoints", response_model=Page[WebhookEndpoint])
def list_endpoints(session: SessionDep, params: Annotated[ListParams, Depends(list_params)]) -> Page[WebhookEndpoint]:
    rows = service.list_endpoints(session, limit=params.limit, after=params.after)
    return Page[WebhookEndpoint].of(rows, params.limit, "id", to_schema)


@router.get("/v1/webhook-endpoints/{endpoint_id}", response_model=WebhookEndpoint)
def get_endpoint(endpoint_id: str, session: SessionDep) -> WebhookEndpoint:
    return to_schema(service.get_endpoint(session, endpoint_id))


@router.patch("/v1/webhook-endpoints/{endpoint_id}", response_model=WebhookEndpoint)
def update_endpoint(
    endpoint_id: str, body: WebhookEndpointUpdate, session: SessionDep, settings: SettingsDep
) -> WebhookEndpoint:
    row = service.update_endpoint(
        session, endpoint_id, body, allow_private=settings.webhook_allow_private_urls, now=utcnow()
    )
    return to_schema(row)


@router.delete("/v1/webhook-endpoints/{endpoint_id}", status_code=204)
def delete_endpoint(endpoint_id: str, session: SessionDep) -> Response:
    service.delete_endpoint(session, endpoint_id)
    return Response(status_code=204)


@router.post("/v1/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=WebhookEndpointWithSecret)
def rotate_secret(endpoint_id: str, session: SessionDep, settings: SettingsDep) -> WebhookEndpointWithSecret:
    row, secret = service.rotate_secret(session, endpoint_id, secret_key=settings.secret_key)
    return with_secret(row, secret)


@router.get("/v1/webhook-endpoints/{endpoint_id}/deliveries", response_model=Page[WebhookDelivery])
def list_deliveries(
    endpoint_id: str, session: SessionDep, params: Annotated[ListParams, Depends(list_params)]
) -> Page[WebhookDelivery]:
    rows = service.list_deliveries(session, endpoint_id, limit=params.limit, after=params.after)
    nxt = encode_cursor(str(rows[params.limit - 1].id)) if len(rows) > params.limit else None
    return Page[WebhookDelivery](data=[delivery_schema(r) for r in rows[: params.limit]], next=nxt)


@router.post("/v1/webhook-deliveries/{delivery_id}/retry", response_model=WebhookDelivery)
def retry_delivery(delivery_id: str, session: SessionDep) -> WebhookDelivery:
    return delivery_schema(service.retry_delivery(session, delivery_id, now=utcnow()))
