"""Webhook endpoints (CRUD, signing secrets) and the fan-out of outbox messages into deliveries.

The signing secret (``whsec_<base64 of 24 random bytes>``) is shown once, on create and on
rotate-secret, and stored encrypted (``kit.crypto``, purpose ``webhook-secret``).
:func:`fan_out` is the outbox handler for webhook event types: one ``webhook_deliveries`` row per
subscribed endpoint (unique per endpoint and message, so it is idempotent); the worker then
delivers each row on its own schedule (:mod:`tollway.notification.delivery`).
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, object_session

from tollway.errors import ValidationFailed
from tollway.kit.crypto import Secret, SecretKeyMissing, configured_secret, decrypt, encrypt
from tollway.kit.pagination import decode_cursor
from tollway.models import OutboxMessage, WebhookDelivery, WebhookEndpoint
from tollway.notification.errors import WebhookDeliveryNotFound, WebhookEndpointExists, WebhookEndpointNotFound
from tollway.notification.events import EVENT_TYPES
from tollway.notification.schemas import WebhookEndpointCreate, WebhookEndpointUpdate
from tollway.notification.urls import literal_private

SECRET_PURPOSE = "webhook-secret"  # noqa: S105 - a key-derivation label, not a secret
SECRET_PREFIX = "whsec_"  # noqa: S105


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def endpoint_secret(endpoint: WebhookEndpoint, *, secret_key: Secret) -> str:
    return decrypt(SECRET_PURPOSE, endpoint.secret_encrypted, secret=secret_key)


def _check_url(url: str, allow_private: bool) -> None:
    if not allow_private and literal_private(url):
        raise ValidationFailed.field(
            "url", "must not point to a loopback or private address (TOLLWAY_WEBHOOK_ALLOW_PRIVATE_URLS is off)"
        )


def get_endpoint(session: Session, endpoint_id: str) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        raise WebhookEndpointNotFound(endpoint_id)
    return endpoint


def create_endpoint(
    session: Session, data: WebhookEndpointCreate, *, secret_key: Secret, allow_private: bool
) -> tuple[WebhookEndpoint, str]:
    """Returns the endpoint and its signing secret (in clear, to show once)."""
    if session.get(WebhookEndpoint, data.id) is not None:
        raise WebhookEndpointExists(data.id)
    _check_url(data.url, allow_private)
    secret = new_secret()
    endpoint = WebhookEndpoint(
        id=data.id,
        url=data.url,
        description=data.description,
        event_types=data.event_types,
        secret_encrypted=encrypt(SECRET_PURPOSE, secret, secret=secret_key),
        status="enabled",
        consecutive_failures=0,
    )
    session.add(endpoint)
    session.flush()
    return endpoint, secret


def list_endpoints(session: Session, *, limit: int, after: str | None) -> list[WebhookEndpoint]:
    stmt = select(WebhookEndpoint).order_by(WebhookEndpoint.id).limit(limit + 1)
    if after:
        stmt = stmt.where(WebhookEndpoint.id > decode_cursor(after))
    return list(session.scalars(stmt))


def update_endpoint(
    session: Session, endpoint_id: str, data: WebhookEndpointUpdate, *, allow_private: bool, now: datetime
) -> WebhookEndpoint:
    endpoint = get_endpoint(session, endpoint_id)
    given = data.model_fields_set
    if "url" in given:
        if data.url is None:
            raise ValidationFailed.field("url", "must not be null")
        _check_url(data.url, allow_private)
        endpoint.url = data.url
    if "event_types" in given:
        endpoint.event_types = data.event_types
    if "description" in given:
        endpoint.description = data.description
    if "status" in given and data.status is not None and data.status != endpoint.status:
        endpoint.status = data.status
        if data.status == "enabled":
            enable(session, endpoint, now=now)
        else:
            endpoint.disabled_reason = "disabled by PATCH"
    session.flush()
    return endpoint


def enable(session: Session, endpoint: WebhookEndpoint, *, now: datetime) -> None:
    """Re-enable: forget the failure streak and resume its pending deliveries at once."""
    endpoint.status = "enabled"
    endpoint.disabled_reason = None
    endpoint.consecutive_failures = 0
    endpoint.failing_since = None
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == "pending")
        .values(next_attempt_at=now)
    )


def delete_endpoint(session: Session, endpoint_id: str) -> None:
    endpoint = get_endpoint(session, endpoint_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    session.flush()


def rotate_secret(session: Session, endpoint_id: str, *, secret_key: Secret) -> tuple[WebhookEndpoint, str]:
    """A new signing secret; deliveries from now on are signed with it (the old one stops at once)."""
    endpoint = get_endpoint(session, endpoint_id)
    secret = new_secret()
    endpoint.secret_encrypted = encrypt(SECRET_PURPOSE, secret, secret=secret_key)
    session.flush()
    return endpoint, secret


def list_deliveries(session: Session, endpoint_id: str, *, limit: int, after: str | None) -> list[WebhookDelivery]:
    """Newest first."""
    get_endpoint(session, endpoint_id)
    stmt = (
        select(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id)
        .order_by(WebhookDelivery.id.desc())
        .limit(limit + 1)
    )
    if after:
        try:
            stmt = stmt.where(WebhookDelivery.id < int(decode_cursor(after)))
        except ValueError as exc:
            raise ValidationFailed.field("after", "not a cursor issued by this API") from exc
    return list(session.scalars(stmt))


def parse_delivery_id(delivery_id: str) -> int | None:
    prefix, _, number = delivery_id.partition("_")
    if prefix != "dlv" or not number.isdigit() or len(number) > 18:
        return None
    return int(number)


def delivery_public_id(delivery: WebhookDelivery) -> str:
    return f"dlv_{delivery.id}"


def message_public_id(message_id: int) -> str:
    return f"msg_{message_id}"


def retry_delivery(session: Session, delivery_id: str, *, now: datetime) -> WebhookDelivery:
    """Attempt again at once, with a fresh retry schedule (delivered ones are sent again too)."""
    number = parse_delivery_id(delivery_id)
    delivery = session.get(WebhookDelivery, number) if number is not None else None
    if delivery is None:
        raise WebhookDeliveryNotFound(delivery_id)
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.schedule_start = delivery.attempts
    session.flush()
    return delivery


def subscribed(endpoint: WebhookEndpoint, topic: str) -> bool:
    return endpoint.event_types is None or topic in endpoint.event_types


def fan_out(message: OutboxMessage) -> None:
    """Outbox handler: one pending delivery per endpoint subscribed to the message's type.
    Idempotent (unique per endpoint and message). Endpoints that are disabled get theirs too:
    they wait, and go out when the endpoint is re-enabled."""
    if message.topic not in EVENT_TYPES:
        return
    session = object_session(message)
    assert session is not None, "outbox handlers receive a message attached to the drain's session"
    endpoints = [
        e for e in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)) if subscribed(e, message.topic)
    ]
    if not endpoints:
        return
    existing = set(session.scalars(select(WebhookDelivery.endpoint_id).where(WebhookDelivery.message_id == message.id)))
    now = message.created_at
    for endpoint in endpoints:
        if endpoint.id in existing:
            continue
        session.add(
            WebhookDelivery(
                endpoint_id=endpoint.id,
                message_id=message.id,
                type=message.topic,
                status="pending",
                attempts=0,
                schedule_start=0,
                next_attempt_at=now,
            )
        )
    session.flush()


def message_body(message_id: int, topic: str, created_at: datetime, payload: dict[str, Any]) -> bytes:
    """The JSON body POSTed for a message (Standard Webhooks envelope)."""
    return orjson.dumps(
        {
            "id": message_public_id(message_id),
            "type": topic,
            "timestamp": created_at.isoformat().replace("+00:00", "Z"),
            "data": payload,
        }
    )


def startup_problem(session: Session, *, secret_key: Secret) -> str | None:
    """Why a server or worker must not start, or None: webhook endpoints exist and their signing
    secrets cannot be decrypted without TOLLWAY_SECRET_KEY."""
    if session.scalars(select(WebhookEndpoint.id).limit(1)).first() is None:
        return None
    try:
        configured_secret(secret_key)
    except SecretKeyMissing as exc:
        return f"webhook endpoints are configured, and {exc.message}"
    return None
