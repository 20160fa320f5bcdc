"""Custom alerts (CRUD) and the log of fired thresholds (``alert-events``). Evaluation is in
:mod:`tollway.alert.evaluate`."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from tollway.alert.errors import AlertExists, AlertNotFound
from tollway.alert.schemas import AlertCreate
from tollway.errors import ValidationFailed
from tollway.kit.fields import format_decimal
from tollway.kit.pagination import decode_cursor
from tollway.models import Alert, AlertEvent, Customer, Meter


def create_alert(session: Session, data: AlertCreate) -> Alert:
    if session.get(Alert, data.id) is not None:
        raise AlertExists(data.id)
    if data.metric == "usage":
        if data.meter is None:
            raise ValidationFailed.field("meter", "required when metric is 'usage'")
        if session.get(Meter, data.meter) is None:
            raise ValidationFailed.field("meter", f"unknown meter '{data.meter}'")
    elif data.meter is not None:
        raise ValidationFailed.field("meter", "not used when metric is 'spend' (the upcoming invoice's total)")
    if data.customer is not None and session.get(Customer, data.customer) is None:
        raise ValidationFailed.field("customer", f"unknown customer '{data.customer}'")
    alert = Alert(
        id=data.id,
        customer_id=data.customer,
        metric=data.metric,
        meter=data.meter,
        thresholds=[format_decimal(t) for t in data.thresholds],
        channels=list(data.channels),
    )
    session.add(alert)
    session.flush()
    return alert


def get_alert(session: Session, alert_id: str) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None:
        raise AlertNotFound(alert_id)
    return alert


def list_alerts(session: Session, *, customer: str | None, limit: int, after: str | None) -> list[Alert]:
    stmt = select(Alert).order_by(Alert.id).limit(limit + 1)
    if customer is not None:
        stmt = stmt.where(Alert.customer_id == customer)
    if after:
        stmt = stmt.where(Alert.id > decode_cursor(after))
    return list(session.scalars(stmt))


def delete_alert(session: Session, alert_id: str) -> None:
    """Stops the alert; the thresholds it fired stay in the alert-events log."""
    session.delete(get_alert(session, alert_id))
    session.flush()


def list_alert_events(session: Session, *, customer: str | None, limit: int, after: str | None) -> list[AlertEvent]:
    """Oldest first; ``after`` is the cursor of the previous page (poll with it for new ones)."""
    stmt = select(AlertEvent).order_by(AlertEvent.id).limit(limit + 1)
    if customer is not None:
        stmt = stmt.where(AlertEvent.customer_id == customer)
    if after:
        try:
            stmt = stmt.where(AlertEvent.id > int(decode_cursor(after)))
        except ValueError as exc:
            raise ValidationFailed.field("after", "not a cursor issued by this API") from exc
    return list(session.scalars(stmt))


def alerts_watching(session: Session, customer: str) -> list[Alert]:
    """The custom alerts that watch ``customer``: its own and those for every customer, by id."""
    stmt = select(Alert).where(or_(Alert.customer_id == customer, Alert.customer_id.is_(None))).order_by(Alert.id)
    return list(session.scalars(stmt))


def latest_alert_events(session: Session, *, customer: str, limit: int) -> list[AlertEvent]:
    """The customer's ``limit`` most recent alert events, newest first (the portal's "recent
    alerts" and the console's customer page; the index on (customer, id) serves it)."""
    stmt = select(AlertEvent).where(AlertEvent.customer_id == customer).order_by(AlertEvent.id.desc()).limit(limit)
    return list(session.scalars(stmt))
