"""Computing a subscription period's invoice lines from its plan and the metered usage.

One function prices a period (:func:`period_lines`); the upcoming invoice calls it live (usage
totals read through the hourly rollups), the billing run calls it with the invoice's ``as_of``
cutoff (read from the raw events), and the adjustment mechanism calls it again for an already
finalized period with a later cutoff (see :mod:`tollway.invoice.adjust`).

Within a period, usage charges read the meter over ``[start, end)``. The part of the period inside
the plan's free window (``free_period_days`` from the subscription start) is metered on its own
and shown as zero-priced lines; the rest is priced by :mod:`tollway.pricing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from tollway.catalog.service import plan_pricing
from tollway.invoice.errors import UnbillableUsage
from tollway.kit.fields import format_decimal
from tollway.kit.money import AmountOutOfRange, Currency, parse_currency
from tollway.kit.periods import Period, days_between
from tollway.meter.definition import MeterDefinition
from tollway.meter.query import UsageValue, query_usage, usage_totals
from tollway.meter.values import TOTALS_AGGREGATIONS, event_values, meter_totals
from tollway.models import Meter
from tollway.pricing import (
    Charge,
    PlanPricing,
    PricedLine,
    PricingError,
    Proration,
    early_termination_fee_line,
    price_charge,
    price_revenue_share,
    recurring_fee_line,
    setup_fee_line,
)
from tollway.subscription.terms import Terms

ZERO = Decimal(0)
NO_VALUE = "(none)"
"""The dimension value of events that lack the dimension property."""


@dataclass
class BillLine:
    """An invoice line: the contract's fields, with ``amount`` already rounded to the minor unit.

    ``key`` names what a usage line bills (the charge code, or ``revenue_share:<meter>``) so a
    later recomputation can compare like with like; ``metered`` is that key's metered quantity
    for the whole period. ``adjusts_invoice_id`` is set on adjustment lines."""

    kind: str
    description: str
    quantity: Decimal
    amount: Decimal
    charge: str | None = None
    meter: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    key: str | None = None
    metered: Decimal | None = None
    adjusts_invoice_id: str | None = None

    def to_dict(self, currency: Currency) -> dict[str, Any]:
        from tollway.kit.money import money_str

        return {
            "kind": self.kind,
            "charge": self.charge,
            "meter": self.meter,
            "description": self.description,
            "quantity": format_decimal(self.quantity),
            "amount": money_str(self.amount, currency),
            "details": self.details,
        }


def from_priced(line: PricedLine, *, key: str | None = None, metered: Decimal | None = None) -> BillLine:
    data = line.to_dict()
    details: dict[str, Any] = dict(data["details"])  # type: ignore[call-overload]
    if key is not None and metered is not None:
        details["metered_quantity"] = format_decimal(metered)
    return BillLine(
        kind=line.kind,
        description=line.description,
        quantity=line.quantity,
        amount=line.amount,
        charge=line.charge,
        meter=line.meter,
        details=details,
        key=key,
        metered=metered,
    )


@dataclass
class PeriodContext:
    """Everything needed to price one period of one subscription."""

    terms: Terms
    pricing: PlanPricing
    currency: Currency
    meters: dict[str, MeterDefinition]

    @classmethod
    def load(cls, session: Session, terms: Terms, cache: dict[str, PeriodContext] | None = None) -> PeriodContext:
        """The context for ``terms``; ``cache`` (keyed by plan code) shares the parsed pricing and
        meter definitions between subscriptions of one billing run (published plans and the
        meters they use cannot change)."""
        if cache is not None and terms.plan.code in cache:
            cached = cache[terms.plan.code]
            return cls(terms, cached.pricing, cached.currency, cached.meters)
        pricing = plan_pricing(terms.plan)
        keys = {c.meter for c in pricing.charges if c.meter}
        if pricing.revenue_share is not None:
            keys.add(pricing.revenue_share.meter)
        meters: dict[str, MeterDefinition] = {}
        for key in sorted(keys):
            row = session.get(Meter, key)
            if row is not None:
                meters[key] = MeterDefinition.from_row(row)
        ctx = cls(terms, pricing, parse_currency(terms.plan.currency), meters)
        if cache is not None and terms.plan.status == "published":
            cache[terms.plan.code] = ctx
        return ctx


@dataclass(frozen=True)
class KnownTotals:
    """Meter totals over ``[start, end)`` of one customer with the invoice's ``as_of``, read
    beforehand by :func:`tollway.meter.values.meter_totals_many` (the billing run reads a chunk
    of invoices at once): exactly what :class:`_Usage` would read itself, so it uses them."""

    start: datetime
    end: datetime
    totals: dict[str, Decimal | None]


class _Usage:
    """Meter reads for one customer and cutoff, cached per (meter, window, split).

    Without a cutoff (the upcoming invoice and everything that prices live usage) totals are
    read through the meter's hourly rollups (:func:`tollway.meter.query.usage_totals`); with a
    cutoff (``as_of``: finalized invoices, their recomputation and the simulator) they are read
    from the raw events, which alone can answer what was ingested and not voided by then."""

    def __init__(
        self, session: Session, ctx: PeriodContext, as_of: datetime | None, known: KnownTotals | None = None
    ) -> None:
        self.session = session
        self.ctx = ctx
        self.as_of = as_of
        self.customer = ctx.terms.subscription.customer_id
        self._cache: dict[tuple[Any, ...], Any] = {}
        if known is not None:  # read already, with the same function and cutoff (a billing run's batch)
            for key, value in known.totals.items():
                self._cache[("total", key, known.start, known.end)] = value if value is not None else ZERO

    def _query(
        self, meter_key: str, start: datetime, end: datetime, *, group_by: Sequence[str] = ()
    ) -> list[UsageValue]:
        """``query_usage`` for this customer, plan zone and cutoff (uncached)."""
        return query_usage(
            self.session,
            self.ctx.meters[meter_key],
            start=start,
            end=end,
            customer=self.customer,
            tz=self.ctx.terms.tz,
            group_by=group_by,
            as_of=self.as_of,
        )

    def total(self, meter_key: str | None, start: datetime, end: datetime) -> Decimal:
        if meter_key is None or meter_key not in self.ctx.meters or end <= start:
            return ZERO
        ck = ("total", meter_key, start, end)
        meter = self.ctx.meters[meter_key]
        if ck not in self._cache and self.as_of is None:
            # Live (no cutoff): whole UTC hours from the rollups plus the events not rolled up
            # yet, the ragged edges raw (read raw altogether while the meter's rollups are built).
            [live] = usage_totals(self.session, meter, [(self.customer, start, end)])
            self._cache[ck] = live if live is not None else ZERO
        if ck not in self._cache and meter.aggregation in TOTALS_AGGREGATIONS:
            # Every meter of the plan on this event type, in one scan of the customer's events.
            batch = [
                m
                for m in self.ctx.meters.values()
                if m.event_type == meter.event_type
                and m.aggregation in TOTALS_AGGREGATIONS
                and ("total", m.key, start, end) not in self._cache
            ]
            found = meter_totals(self.session, batch, start=start, end=end, customer=self.customer, as_of=self.as_of)
            for key, found_value in found.items():
                self._cache[("total", key, start, end)] = found_value if found_value is not None else ZERO
        if ck not in self._cache:
            self._cache[ck] = sum((r.value or ZERO for r in self._query(meter_key, start, end)), ZERO)
        value: Decimal = self._cache[ck]
        return value

    def by_dimension(self, meter_key: str | None, start: datetime, end: datetime, dim: str) -> dict[str, Decimal]:
        if meter_key is None or meter_key not in self.ctx.meters or end <= start:
            return {}
        ck = ("dim", meter_key, start, end, dim)
        if ck not in self._cache:
            out: dict[str, Decimal] = {}
            for r in self._query(meter_key, start, end, group_by=(dim,)):
                name = r.groups.get(dim) or NO_VALUE
                out[name] = out.get(name, ZERO) + (r.value or ZERO)
            self._cache[ck] = out
        result: dict[str, Decimal] = self._cache[ck]
        return result

    def values(
        self, meter_key: str | None, start: datetime, end: datetime, dim: str | None
    ) -> dict[str, list[Decimal]]:
        if meter_key is None or meter_key not in self.ctx.meters or end <= start:
            return {}
        found = event_values(
            self.session,
            self.ctx.meters[meter_key],
            start=start,
            end=end,
            customer=self.customer,
            as_of=self.as_of,
            split_by=dim,
        )
        return {(k if k is not None else NO_VALUE): v for k, v in found.items()}


def _price_window(
    charge: Charge, usage: _Usage, currency: Currency, start: datetime, end: datetime
) -> list[PricedLine]:
    """Price ``charge`` for the usage in ``[start, end)``."""
    if charge.needs_event_values:
        vals = usage.values(charge.meter, start, end, charge.dimension)
        if charge.dimension:
            return list(price_charge(charge, None, currency, values=vals).lines)
        flat: Sequence[Decimal] = vals.get(NO_VALUE, [])
        return list(price_charge(charge, None, currency, values=flat).lines)
    if charge.dimension:
        quantities = usage.by_dimension(charge.meter, start, end, charge.dimension)
        return list(price_charge(charge, dict(quantities), currency).lines)
    return list(price_charge(charge, usage.total(charge.meter, start, end), currency).lines)


def _window_details(start: datetime, end: datetime) -> dict[str, str]:
    return {"from": start.isoformat(), "to": end.isoformat()}


def usage_lines(
    session: Session,
    ctx: PeriodContext,
    period: Period,
    *,
    as_of: datetime | None,
    usage: _Usage | None = None,
    known: KnownTotals | None = None,
) -> list[BillLine]:
    """The usage-driven lines of a period: every charge (free window and paid part) and the
    revenue share. These are what a later recomputation compares (key by key)."""
    usage = usage or _Usage(session, ctx, as_of, known)
    cur = ctx.currency
    start, end = period.start, period.end
    free_until = ctx.terms.free_until()
    free_end = min(end, free_until) if free_until is not None and free_until > start else start
    lines: list[BillLine] = []
    for charge in ctx.pricing.charges:
        metered = usage.total(charge.meter, start, end)
        if free_end > start:
            free_qty = usage.total(charge.meter, start, free_end)
            lines.append(
                BillLine(
                    kind="usage",
                    description=f"{charge.label}: {format_decimal(free_qty)} units in the free period",
                    quantity=free_qty,
                    amount=ZERO,
                    charge=charge.code,
                    meter=charge.meter,
                    details={
                        "free_period": True,
                        "window": _window_details(start, free_end),
                        "metered_quantity": format_decimal(metered),
                        "amount_exact": "0",
                        "timing": "in_arrears",
                    },
                    key=charge.code,
                    metered=metered,
                )
            )
        if free_end < end:
            for priced in _price_window(charge, usage, cur, free_end, end):
                line = from_priced(priced, key=charge.code, metered=metered)
                if free_end > start:
                    line.details["window"] = _window_details(free_end, end)
                lines.append(line)
    share = ctx.pricing.revenue_share
    if share is not None:
        revenue = usage.total(share.meter, start, end)
        key = f"revenue_share:{share.meter}"
        lines.append(from_priced(price_revenue_share(share, revenue, cur), key=key, metered=revenue))
    return lines


def period_lines(
    session: Session,
    ctx: PeriodContext,
    period: Period,
    full: Period,
    *,
    as_of: datetime | None,
    known: KnownTotals | None = None,
) -> list[BillLine]:
    """Every line of one (possibly partial) period: setup fee (first period), recurring fee
    (prorated by days when partial and the plan says so), usage charges, revenue share, and the
    early-termination fee on the last period of a subscription cancelled within its contract term."""
    terms = ctx.terms
    sub = terms.subscription
    fees = ctx.pricing.fees
    cur = ctx.currency
    lines: list[BillLine] = []
    if period.index == 0 and sub.charge_setup_fee and fees.setup is not None:
        lines.append(from_priced(setup_fee_line(fees.setup, cur)))
    if fees.recurring is not None:
        days_in = terms.cycle.days_in(full)
        days_used = min(days_between(period.start, period.end, terms.tz), days_in)
        fraction: Decimal | Proration = Decimal(1) if days_used == days_in else Proration(days_used, days_in)
        lines.append(from_priced(recurring_fee_line(fees.recurring, cur, fraction)))
    try:
        lines.extend(usage_lines(session, ctx, period, as_of=as_of, known=known))
    except (AmountOutOfRange, PricingError) as exc:
        raise UnbillableUsage(sub.id, str(exc)) from exc
    contract_end = terms.contract_end()
    if (
        fees.early_termination is not None
        and sub.ends_at is not None
        and period.end == sub.ends_at
        and sub.cancel_mode in ("immediate", "period_end")
        and contract_end is not None
        and sub.ends_at < contract_end
    ):
        line = from_priced(early_termination_fee_line(fees.early_termination, cur))
        line.details["contract_ends_at"] = contract_end.isoformat()
        line.details["ended_at"] = sub.ends_at.isoformat()
        lines.append(line)
    return lines


def key_totals(lines: Sequence[BillLine]) -> dict[str, tuple[Decimal, Decimal]]:
    """Per usage key: (amount billed, metered quantity)."""
    out: dict[str, tuple[Decimal, Decimal]] = {}
    for line in lines:
        if line.key is None:
            continue
        amount, metered = out.get(line.key, (ZERO, line.metered or ZERO))
        out[line.key] = (amount + line.amount, metered)
    return out
