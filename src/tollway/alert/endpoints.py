from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from tollway.alert import service
from tollway.alert.schemas import Alert, AlertCreate, AlertEvent
from tollway.auth.dependencies import require_admin
from tollway.deps import SessionDep
from tollway.kit.listing import ListParams, list_params
from tollway.kit.pagination import Page, encode_cursor
from tollway.models import Alert as AlertRow
from tollway.models import AlertEvent as AlertEventRow

router = APIRouter(tags=["alerts"], dependencies=[Depends(require_admin)])


def to_schema(row: AlertRow) -> Alert:
    return Alert.model_validate(
        {
            "id": row.id,
            "customer": row.customer_id,
            "metric": row.metric,
            "meter": row.meter,
            "thresholds": row.thresholds,
            "channels": row.channels,
            "created_at": row.created_at,
        }
    )


def event_schema(row: AlertEventRow) -> AlertEvent:
    return AlertEvent.model_validate(
        {
            "id": f"ae_{row.id}",
            "source": row.source,
            "alert": row.alert_id,
            "customer": row.customer_id,
            "subscription": row.subscription_id,
            "meter": row.meter,
            "metric": row.metric,
            "threshold": row.threshold,
            "threshold_value": row.threshold_value,
            "value": row.value,
            "period_start": row.period_start,
            "period_end": row.period_end,
            "fired_at": row.fired_at,
        }
    )


@router.post("/v1/alerts", status_code=201, response_model=Alert)
def create_alert(body: AlertCreate, session: SessionDep) -> Alert:
    return to_schema(service.create_alert(session, body))


@router.get("/v1/alerts", response_model=Page[Alert])
def list_alerts(
    session: SessionDep,
    params: Annotated[ListParams, Depends(list_params)],
    customer: Annotated[str | None, Query(description="only this customer's alerts")] = None,
) -> Page[Alert]:
    rows = service.list_alerts(session, customer=customer, limit=params.limit, after=params.after)
    return Page[Alert].of(rows, params.limit, "id", to_schema)


@router.get("/v1/alerts/{alert_id}", response_model=Alert)
def get_alert(alert_id: str, session: SessionDep) -> Alert:
    return to_schema(service.get_alert(session, alert_id))


@router.delete("/v1/alerts/{alert_id}", status_code=204)
def delete_alert(alert_id: str, session: SessionDep) -> Response:
    service.delete_alert(session, alert_id)
    return Response(status_code=204)


@router.get("/v1/alert-events", response_model=Page[AlertEvent])
def list_alert_events(
    session: SessionDep,
    params: Annotated[ListParams, Depends(list_params)],
    customer: Annotated[str | None, Query(description="only this customer's")] = None,
) -> Page[AlertEvent]:
    """Fired thresholds, oldest first (`after` = the previous page's `next`)."""
    rows = service.list_alert_events(session, customer=customer, limit=params.limit, after=params.after)
    nxt = encode_cursor(str(rows[params.limit - 1].id)) if len(rows) > params.limit else None
    return Page[AlertEvent](data=[event_schema(r) for r in rows[: params.limit]], next=nxt)
