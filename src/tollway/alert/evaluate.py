"""Alert evaluation: fire each threshold once per subscription per billing period.

Incremental: rolling events up notes their customers in ``usage_changes`` (same transaction,
``meter.fold.apply_pending``); :func:`evaluate_changed` claims a batch of those customers
(``SKIP LOCKED`` on PostgreSQL, so several workers share the queue) and evaluates them.
Customers without new usage are never read. A batch reads its subscriptions, alerts and fired
thresholds in three statements and the period usage of all its customers in one statement per
meter (``meter.query.usage_totals``: the rollups plus the events not rolled
up yet, exactly what a single-customer usage query reads). The worker's notify loop runs it
every outbox poll interval, so a threshold fires within about one rollup interval (5 s by
default) of the event that crossed it.

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
from tollway.meter.query import usage_totals
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


@dataclass(frozen=True)
class _Due:
    """A check of one subscription with thresholds not fired yet in the current period."""

    sub: Subscription
    check: Check
    start: datetime
    end: datetime
    pending: list[tuple[Decimal, Decimal]]  # (threshold, value that fires it), by value ascending


def _dues(
    session: Session, sub: Subscription, alerts: list[Alert], done: set[tuple[str, datetime, str, str]], now: datetime
) -> list[_Due]:
    plan = session.get(Plan, sub.plan_code)
    if plan is None:
        return []
    checks = _checks(session, sub, plan, alerts)
    if not checks:
        return []
    found = Terms.of(sub, plan).period_at(now)
    if found is None:
        return []
    period = found[0]
    out = []
    for check in checks:
        pending = [
            (t, v)
            for t, v in check.thresholds
            if (sub.id, period.start, check.source_key, format_decimal(t)) not in done
        ]
        if pending:
            out.append(_Due(sub, check, period.start, period.end, sorted(pending, key=lambda p: p[1])))
    return out


@dataclass
class _Prefetched:
    """What evaluating a batch of customers reads: subscriptions, alerts and fired thresholds in
    three statements, and the period usage of every check still due in one statement per meter
    (:func:`tollway.meter.query.usage_totals`), whatever the number of customers."""

    dues: dict[str, list[_Due]]
    usage: dict[tuple[str, str, datetime, datetime], Decimal | None]  # (meter, customer, start, end)
    spend: dict[str, Decimal | None]  # subscription -> upcoming total

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
        dues: dict[str, list[_Due]] = {}
        for customer, group in subs.items():
            mine = sorted([*alerts.get(customer, []), *alerts.get(None, [])], key=lambda a: a.id)
            dues[customer] = [due for sub in group for due in _dues(session, sub, mine, done, now)]
        known = cls(dues, {}, {})
        known._load_usage(session)
        return known

    def _load_usage(self, session: Session) -> None:
        """Every due usage check's value, one statement per meter. When a statement fails, its
        meter's values are left to :meth:`value` (read customer by customer, each failure kept to
        its customer)."""
        spans: dict[str, list[tuple[str, datetime, datetime]]] = {}
        for dues in self.dues.values():
            for due in dues:
                if due.check.metric == "usage" and due.check.meter is not None:
                    span = (due.sub.customer_id, due.start, due.end)
                    if span not in spans.setdefault(due.check.meter, []):
                        spans[due.check.meter].append(span)
        for meter_key, wanted in spans.items():
            row = session.get(Meter, meter_key)
            if row is None:
                continue
            try:
                with session.begin_nested():
                    totals = usage_totals(session, MeterDefinition.from_row(row), wanted)
            except Exception:
                log.exception("batched usage of meter %s failed; reading it customer by customer", meter_key)
                continue
            for (customer, start, end), total in zip(wanted, totals, strict=True):
                self.usage[(meter_key, customer, start, end)] = total

    def may_fire(self, customer: str) -> bool:
        """False when nothing of the customer can fire: every check still due is a usage check
        whose value (already read) is below its lowest threshold not fired yet."""
        for due in self.dues.get(customer, []):
            if due.check.metric != "usage":
                return True
            key = (due.check.meter or "", customer, due.start, due.end)
            if key not in self.usage or (self.usage[key] or ZERO) >= due.pending[0][1]:
                return True
        return False

    def all_read(self, customer: str) -> bool:
        """Whether every value the customer's due checks need is read already (usage checks)."""
        return all(
            due.check.metric == "usage" and (due.check.meter or "", customer, due.start, due.end) in self.usage
            for due in self.dues.get(customer, [])
        )

    def value(self, session: Session, due: _Due, now: datetime) -> Decimal | None:
        """The value ``due``'s thresholds are compared with (None: nothing to compare)."""
        check, sub = due.check, due.sub
        if check.metric != "usage":
            if sub.id not in self.spend:
                self.spend[sub.id] = _spend(session, sub, now)
            return self.spend[sub.id]
        if check.meter is None:
            return None
        key = (check.meter, sub.customer_id, due.start, due.end)
        if key not in self.usage:
            row = session.get(Meter, check.meter)
            if row is None:
                return None
            self.usage[key] = usage_totals(session, MeterDefinition.from_row(row), [key[1:]])[0]
        return self.usage[key] or ZERO


def _spend(session: Session, sub: Subscription, now: datetime) -> Decimal | None:
    from tollway.invoice.service import upcoming_invoice  # the invoice layer sits above alerts

    upcoming = upcoming_invoice(session, sub.customer_id, at=now)
    for invoice in upcoming.invoices:
        if invoice.subscription == sub.id and invoice.total is not None:
            return Decimal(invoice.total)
    return None


def _crossings(session: Session, known: _Prefetched, customer_id: str, now: datetime) -> list[_Firing]:
    """The thresholds the customer has reached and not fired yet, lowest first per check."""
    out: list[_Firing] = []
    for due in known.dues.get(customer_id, []):
        value = known.value(session, due, now)
        if value is None:
            continue
        for threshold, value_at in due.pending:
            if value < value_at:
                break
            out.append(
                (due.check, due.sub, _payload(due.check, due.sub, threshold, value_at, value, due.start, due.end))
            )
    return out


def evaluate_customer(
    session: Session, customer_id: str, *, now: datetime, prefetched: _Prefetched | None = None
) -> list[dict[str, Any]]:
    """Fire the thresholds the customer's subscriptions have reached in their current periods.
    Returns the ``alert.triggered`` payloads fired (lowest first per check)."""
    known = prefetched or _Prefetched.load(session, [customer_id], now)
    return _fire(session, _crossings(session, known, customer_id, now), now=now)


_Firing = tuple[Check, Subscription, dict[str, Any]]


def _fire(session: Session, firings: list[_Firing], *, now: datetime) -> list[dict[str, Any]]:
    """Insert the alert events (unique per subscription/period/source/threshold) in one
    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` and emit the messages of those inserted, in
    the order given; a threshold another evaluator fired first is not fired again. Returns the
    payloads fired. Each subscription has one current period here, so (subscription, source,
    threshold) names a row."""
    if not firings:
        return []
    insert = pg_insert if is_postgres(session) else sqlite_insert
    rows = [
        {
            "source": check.source,
            "source_key": check.source_key,
            "alert_id": check.alert_id,
            "customer_id": sub.customer_id,
            "subscription_id": sub.id,
            "meter": check.meter,
            "metric": check.metric,
            "threshold": payload["threshold"],
            "threshold_value": payload["threshold_value"],
            "value": payload["value"],
            "period_start": datetime.fromisoformat(payload["period_start"]),
            "period_end": datetime.fromisoformat(payload["period_end"]),
            "fired_at": now,
        }
        for check, sub, payload in firings
    ]
    stmt = (
        insert(_EVENTS)
        .values(rows)
        .on_conflict_do_nothing()
        .returning(_EVENTS.c.subscription_id, _EVENTS.c.source_key, _EVENTS.c.threshold)
    )
    inserted = {(r[0], r[1], r[2]) for r in session.execute(stmt)}
    fired = []
    for check, sub, payload in firings:
        row = (sub.id, check.source_key, payload["threshold"])
        if row not in inserted:
            continue  # another evaluator fired it first (or it is listed twice: fired once)
        inserted.discard(row)
        key = f"{sub.id}:{payload['period_start']}:{check.source_key}:{payload['threshold']}"
        if "webhook" in check.channels:
            emit(session, "alert.triggered", payload, key=key)
        if "email" in check.channels:
            emit(session, EMAIL_TOPIC, payload, key=key)
        log.info("alert fired: %s", key)
        fired.append(payload)
    return fired


def _claim(factory: sessionmaker[Session], limit: int | None) -> list[str]:
    """Take up to ``limit`` (None: all) noted customers off ``usage_changes``, in a transaction of its own
    committed at once (``SKIP LOCKED`` on PostgreSQL, so concurrent workers take disjoint
    batches). A rollup noting one of them again while the batch is evaluated adds a new row
    without waiting, and that customer is evaluated again at the next step (a claim that only
    locked the rows until the evaluation committed lost such a note, or made the rollup wait for
    the evaluation). The evaluation notes again whatever it could not evaluate."""
    with factory() as session:
        pick = select(UsageChange.customer).order_by(UsageChange.customer)
        if limit is not None:
            pick = pick.limit(limit)
        if is_postgres(session):
            pick = pick.with_for_update(skip_locked=True)
        taken = (
            delete(UsageChange).where(UsageChange.customer.in_(pick.scalar_subquery())).returning(UsageChange.customer)
        )
        customers = sorted(session.scalars(taken))
        session.commit()
    return customers


def _note_again(session: Session, customers: list[str]) -> None:
    insert = pg_insert if is_postgres(session) else sqlite_insert
    stmt = insert(UsageChange).values([{"customer": c} for c in customers]).on_conflict_do_nothing()
    session.execute(stmt)


def _fire_batch(session: Session, known: _Prefetched, customers: list[str], now: datetime) -> tuple[int, set[str]]:
    """Fire, in one statement, what the customers whose values are all read already have
    crossed. Returns (thresholds fired, the customers left to evaluate one by one: those with
    a value still to read, or all of them when the batch insert fails)."""
    alone = {c for c in customers if known.may_fire(c) and not known.all_read(c)}
    batch = [c for c in customers if known.may_fire(c) and known.all_read(c)]
    firings = [f for c in batch for f in _crossings(session, known, c, now)]
    try:
        with session.begin_nested():
            return len(_fire(session, firings, now=now)), alone
    except Exception:
        log.exception("firing a batch of %d thresholds failed; firing customer by customer", len(firings))
        return 0, alone | set(batch)


def _has_rules(session: Session) -> bool:
    """Whether any alert or any plan notification exists: something to evaluate usage against."""
    if session.scalar(select(Alert.id).limit(1)) is not None:
        return True
    return any(n for n in session.scalars(select(Plan.notifications)))


def evaluate_changed(
    factory: sessionmaker[Session], *, now: datetime | None = None, limit: int = 500
) -> tuple[int, int]:
    """Evaluate the customers whose usage changed since their last evaluation (up to ``limit``),
    and clear them. A customer whose evaluation fails is noted again and tried again next time
    (all of them when the batch fails as a whole). With no alert and no plan notification to
    evaluate against, every noted customer is cleared at once. Returns (customers evaluated,
    thresholds fired)."""
    customers = _claim(factory, limit)
    if not customers:
        return 0, 0
    try:
        result = _evaluate_batch(factory, customers, now or utcnow())
    except Exception:
        with factory() as session:
            _note_again(session, customers)
            session.commit()
        raise
    if result is None:  # nothing to evaluate against: the other notes go too
        return len(customers) + len(_claim(factory, None)), 0
    return result


def _evaluate_batch(factory: sessionmaker[Session], customers: list[str], moment: datetime) -> tuple[int, int] | None:
    """(customers evaluated, thresholds fired); None when no alert and no plan notification exists."""
    fired = 0
    with factory() as session:
        if not _has_rules(session):
            return None
        done: list[str] = []
        failed: list[str] = []
        prefetched = _Prefetched.load(session, customers, moment)
        fired, alone = _fire_batch(session, prefetched, customers, moment)
        for customer in customers:
            if customer in alone:  # read or fire customer by customer, each failure kept to its customer
                try:
                    with session.begin_nested():
                        fired += len(evaluate_customer(session, customer, now=moment, prefetched=prefetched))
                except Exception:
                    log.exception("alert evaluation failed for customer %s; retrying later", customer)
                    failed.append(customer)
                    continue
            done.append(customer)
        if failed:
            _note_again(session, failed)
        session.commit()
    return len(done), fired
