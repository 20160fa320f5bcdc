"""Alert evaluation: fire each threshold once per subscription per billing period.

Incremental: rolling events up notes their customers in ``usage_changes`` (same transaction,
``meter.rollup.apply_pending``); :func:`evaluate_changed` claims those customers (``FOR UPDATE
SKIP LOCKED`` on PostgreSQL), evaluates each, and clears them. Customers without new usage are
never read. The worker runs it right after each rollup step, so a threshold fires within one
rollup interval (5 s by default) of the event that crossed it.

For each active subscription of a customer, in the period containing now:

- plan ``notifications``: the meter's value against ``target * percent / 100`` (the target is
  the subscription's ``overrides.notification_target`` when set);
- custom alerts of the customer and those for every customer (``customer`` null): ``usage`` =
  the meter's value, ``spend`` = the total of the subscription's upcoming invoice.

Each crossed threshold is inserted into ``alert_events``, unique on (subscription,
period_start, source, threshold): a concurrent evaluator inserting the same row fails and does
not fire. Crossed thresholds fire lowest first. The firing emits ``alert.triggered`` (channel
``webhook``) and ``email.alert`` (channel ``email``) in the same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, delete, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from tollway.catalog.service import plan_notifications
from tollway.db import is_postgres
from tollway.kit.fields import format_decimal
from tollway.kit.time import utcnow
from tollway.meter.definition import MeterDefinition
from tollway.meter.query import query_usage
from tollway.models import Alert, AlertEvent, Meter, Plan, Subscription, UsageChange
from tollway.notification.outbox import emit
from tollway.subscription.terms import Terms

log = logging.getLogger("tollway.alerts")

EMAIL_TOPIC = "email.alert"
_EVENTS = cast(Table, AlertEvent.__table__)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Check:
    source: str  # plan_notification | alert
    source_key: str  # plan:<meter> | alert:<id>
    alert_id: str | None
    metric: str  # usage | spend
    meter: str | None
    thresholds: list[tuple[Decimal, Decimal]]  # (threshold as written, value that fires it), ascending
    channels: tuple[str, ...]


def _checks(session: Session, sub: Subscription, plan: Plan, alerts: list[Alert]) -> list[Check]:
    out: list[Check] = []
    notifications = plan_notifications(plan)
    if notifications is not None:
        override = (sub.overrides or {}).get("notification_target")
        target = Decimal(override) if override is not None else notifications.target
        out.append(
            Check(
                "plan_notification",
                f"plan:{notifications.meter}",
                None,
                "usage",
                notifications.meter,
                [(pct, target * pct / 100) for pct in notifications.thresholds],
                ("webhook", "email"),
            )
        )
    for alert in alerts:
        values = [Decimal(t) for t in alert.thresholds]
        out.append(
            Check(
                "alert",
                f"alert:{alert.id}",
                alert.id,
                alert.metric,
                alert.meter,
                [(v, v) for v in values],
                tuple(alert.channels),
            )
        )
    return out


class _Values:
    """The period's values of one subscription, read once per evaluation."""

    def __init__(self, session: Session, sub: Subscription, terms: Terms, start: datetime, end: datetime) -> None:
        self.session, self.sub, self.terms, self.start, self.end = session, sub, terms, start, end
        self._cache: dict[str, Decimal | None] = {}

    def get(self, check: Check, now: datetime) -> Decimal | None:
        key = f"meter:{check.meter}" if check.metric == "usage" else "spend"
        if key not in self._cache:
            self._cache[key] = self._usage(check.meter) if check.metric == "usage" else self._spend(now)
        return self._cache[key]

    def _usage(self, meter_key: str | None) -> Decimal | None:
        row = self.session.get(Meter, meter_key) if meter_key else None
        if row is None:
            return None
        rows = query_usage(
            self.session,
            MeterDefinition.from_row(row),
            start=self.start,
            end=self.end,
            customer=self.sub.customer_id,
            tz=self.terms.tz,
        )
        return sum((r.value or ZERO for r in rows), ZERO)

    def _spend(self, now: datetime) -> Decimal | None:
        from tollway.invoice.service import upcoming_invoice  # the invoice layer sits above alerts

        upcoming = upcoming_invoice(self.session, self.sub.customer_id, at=now)
        for invoice in upcoming.invoices:
            if invoice.subscription == self.sub.id and invoice.total is not None:
                return Decimal(invoice.total)
        return None


def _payload(
    check: Check,
    sub: Subscription,
    threshold: Decimal,
    value_at: Decimal,
    value: Decimal,
    start: datetime,
    end: datetime,
) -> dict[str, Any]:
    return {
        "source": check.source,
        "alert": check.alert_id,
        "customer": sub.customer_id,
        "subscription": sub.id,
        "meter": check.meter,
        "metric": check.metric,
        "threshold": format_decimal(threshold),
        "threshold_value": format_decimal(value_at),
        "value": format_decimal(value),
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
    }


@dataclass
class _Prefetched:
    """What evaluating a batch of customers reads, in three statements for the whole batch."""

    subs: dict[str, list[Subscription]]
    alerts: dict[str | None, list[Alert]]
    done: set[tuple[str, datetime, str, str]]  # (subscription, period start, source key, threshold)

    @classmethod
    def load(cls, session: Session, customers: list[str], now: datetime) -> _Prefetched:
        subs: dict[str, list[Subscription]] = {}
        for sub in session.scalars(
            select(Subscription)
            .where(
                Subscription.customer_id.in_(customers),
                Subscription.start <= now,
                or_(Subscription.ends_at.is_(None), Subscription.ends_at > now),
            )
            .order_by(Subscription.id)
        ):
            subs.setdefault(sub.customer_id, []).append(sub)
        alerts: dict[str | None, list[Alert]] = {}
        for alert in session.scalars(
            select(Alert).where(or_(Alert.customer_id.in_(customers), Alert.customer_id.is_(None))).order_by(Alert.id)
        ):
            alerts.setdefault(alert.customer_id, []).append(alert)
        sub_ids = [sub.id for group in subs.values() for sub in group]
        done: set[tuple[str, datetime, str, str]] = set()
        if sub_ids:
            rows = session.execute(
                select(
                    AlertEvent.subscription_id, AlertEvent.period_start, AlertEvent.source_key, AlertEvent.threshold
                ).where(AlertEvent.subscription_id.in_(sub_ids), AlertEvent.period_end > now)
            )
            done = {(r[0], r[1], r[2], r[3]) for r in rows}
        return cls(subs, alerts, done)


def evaluate_customer(
    session: Session, customer_id: str, *, now: datetime, prefetched: _Prefetched | None = None
) -> list[dict[str, Any]]:
    """Fire the thresholds the customer's subscriptions have reached in their current periods.
    Returns the ``alert.triggered`` payloads fired (lowest first per check)."""
    known = prefetched or _Prefetched.load(session, [customer_id], now)
    subs = known.subs.get(customer_id, [])
    if not subs:
        return []
    alerts = sorted([*known.alerts.get(customer_id, []), *known.alerts.get(None, [])], key=lambda a: a.id)
    fired: list[dict[str, Any]] = []
    for sub in subs:
        plan = session.get(Plan, sub.plan_code)
        if plan is None:
            continue
        checks = _checks(session, sub, plan, alerts)
        if not checks:
            continue
        terms = Terms.of(sub, plan)
        found = terms.period_at(now)
        if found is None:
            continue
        period = found[0]
        values = _Values(session, sub, terms, period.start, period.end)
        for check in checks:
            pending = [
                (t, v)
                for t, v in check.thresholds
                if (sub.id, period.start, check.source_key, format_decimal(t)) not in known.done
            ]
            if not pending:
                continue
            value = values.get(check, now)
            if value is None:
                continue
            for threshold, value_at in sorted(pending, key=lambda p: p[1]):
                if value < value_at:
                    break
                payload = _payload(check, sub, threshold, value_at, value, period.start, period.end)
                if _fire(session, check, sub, payload, now=now):
                    fired.append(payload)
    return fired


def _fire(session: Session, check: Check, sub: Subscription, payload: dict[str, Any], *, now: datetime) -> bool:
    """Insert the alert event (unique per subscription/period/source/threshold; ``ON CONFLICT DO
    NOTHING``) and emit its messages; False when another evaluator fired it first."""
    insert = pg_insert if is_postgres(session) else sqlite_insert
    stmt = (
        insert(_EVENTS)
        .values(
            source=check.source,
            source_key=check.source_key,
            alert_id=check.alert_id,
            customer_id=sub.customer_id,
            subscription_id=sub.id,
            meter=check.meter,
            metric=check.metric,
            threshold=payload["threshold"],
            threshold_value=payload["threshold_value"],
            value=payload["value"],
            period_start=datetime.fromisoformat(payload["period_start"]),
            period_end=datetime.fromisoformat(payload["period_end"]),
            fired_at=now,
        )
        .on_conflict_do_nothing()
        .returning(_EVENTS.c.id)
    )
    if session.execute(stmt).first() is None:  # another evaluator fired it first
        return False
    key = f"{sub.id}:{payload['period_start']}:{check.source_key}:{payload['threshold']}"
    if "webhook" in check.channels:
        emit(session, "alert.triggered", payload, key=key)
    if "email" in check.channels:
        emit(session, EMAIL_TOPIC, payload, key=key)
    log.info("alert fired: %s", key)
    return True


def _claim(session: Session, limit: int) -> list[str]:
    stmt = select(UsageChange.customer).order_by(UsageChange.customer).limit(limit)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list(session.scalars(stmt))


def evaluate_changed(
    factory: sessionmaker[Session], *, now: datetime | None = None, limit: int = 500
) -> tuple[int, int]:
    """Evaluate the customers whose usage changed since their last evaluation (up to ``limit``),
    and clear them. A customer whose evaluation fails stays noted and is tried again next time.
    Returns (customers evaluated, thresholds fired)."""
    fired = 0
    with factory() as session:
        customers = _claim(session, limit)
        if not customers:
            session.rollback()
            return 0, 0
        has_rules = session.scalar(select(Alert.id).limit(1)) is not None or any(
            n for n in session.scalars(select(Plan.notifications))
        )
        done: list[str] = []
        moment = now or utcnow()
        prefetched = _Prefetched.load(session, customers, moment) if has_rules else None
        for customer in customers:
            if prefetched is not None:
                try:
                    with session.begin_nested():
                        fired += len(evaluate_customer(session, customer, now=moment, prefetched=prefetched))
                except Exception:
                    log.exception("alert evaluation failed for customer %s; retrying later", customer)
                    continue
            done.append(customer)
        if done:
            session.execute(delete(UsageChange).where(UsageChange.customer.in_(done)))
        session.commit()
    return len(done), fired
