"""A plan's prices in words, for people: "Setup fee: 99.00 USD", "api_calls: 0.002 USD per unit".

Pure: definitions in, sentences out. Unit prices keep every digit they were given (a unit price
of 0.0015 is not rounded to the currency); fixed amounts are shown in the currency's minor unit.
"""

from __future__ import annotations

from decimal import Decimal

from tollway.kit.fields import format_decimal
from tollway.kit.money import Currency, format_money
from tollway.pricing.charges import Charge, Tier
from tollway.pricing.fees import Fees
from tollway.pricing.plan import PlanPricing
from tollway.pricing.revenue_share import RevenueShare

__all__ = ["describe_charge", "describe_fees", "describe_plan", "describe_revenue_share"]


def _grouped(value: Decimal) -> str:
    text = format_decimal(value)
    whole, dot, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-') or 0):,}{dot}{frac}"


def _price(value: Decimal, cur: Currency) -> str:
    """A unit price with all its digits, at least the currency's minor unit: 0.0015 USD, 2.00 USD."""
    exact = format_decimal(value)
    decimals = len(exact.partition(".")[2])
    if decimals <= cur.exponent:
        return format_money(value, cur)
    return f"{_grouped(value)} {cur.code}"


def _tier_text(tier: Tier, lower: Decimal, cur: Currency) -> str:
    if tier.up_to is None:
        span = f"above {_grouped(lower)} units" if lower else "every unit"
    elif lower:
        span = f"over {_grouped(lower)} up to {_grouped(tier.up_to)} units"
    else:
        span = f"up to {_grouped(tier.up_to)} units"
    parts = []
    if tier.unit_price:
        parts.append(f"{_price(tier.unit_price, cur)} per unit")
    if tier.flat_fee:
        parts.append(f"{_price(tier.flat_fee, cur)} flat")
    return f"{span}: {' + '.join(parts) or 'free'}"


def _model_text(charge: Charge, cur: Currency) -> str:
    model = charge.model
    if model == "flat":
        return f"{_price(charge.unit_price or Decimal(0), cur)} per unit"
    if model == "package":
        size = _grouped(charge.package_size or Decimal(1))
        return f"{_price(charge.package_price or Decimal(0), cur)} per started pack of {size} units"
    if model in ("graduated", "volume", "stairstep"):
        lead = {
            "graduated": "tiered, each unit at its tier's price",
            "volume": "by volume, every unit at the price of the tier the total reaches",
            "stairstep": "one price for the tier the total reaches",
        }[model]
        lower = Decimal(0)
        tiers = []
        for tier in charge.tiers:
            tiers.append(_tier_text(tier, lower, cur))
            lower = tier.up_to if tier.up_to is not None else lower
        return f"{lead} ({'; '.join(tiers)})"
    if model == "percentage":
        text = f"{format_decimal(charge.rate or Decimal(0))}% of the value"
        if charge.fixed_fee_per_event:
            text += f" + {_price(charge.fixed_fee_per_event, cur)} per event"
        if charge.min_per_event is not None:
            text += f", at least {_price(charge.min_per_event, cur)} per event"
        if charge.max_per_event is not None:
            text += f", at most {_price(charge.max_per_event, cur)} per event"
        return text
    if model == "bundle":
        size = _grouped(charge.bundle_size or Decimal(1))
        text = f"{_price(charge.bundle_price or Decimal(0), cur)} per bundle of {size} units"
        if charge.included_bundles:
            text += f" ({charge.included_bundles} bundle{'s' if charge.included_bundles > 1 else ''} prepaid)"
        return text
    return model  # pragma: no cover - the registry admits no other model


def describe_charge(charge: Charge, cur: Currency) -> str:
    """One usage charge in words, its free units and per-dimension prices included."""
    text = f"{charge.label}: {_model_text(charge.base(), cur)}"
    if charge.free_units:
        text += f", the first {_grouped(charge.free_units)} units free"
    if charge.dimension:
        for value in sorted(charge.dimension_prices):
            text += f"; {charge.dimension} {value}: {_model_text(charge.for_dimension(value), cur)}"
    return text


def describe_fees(fees: Fees, cur: Currency) -> list[str]:
    out = []
    if fees.recurring is not None:
        when = "in advance" if fees.recurring.in_advance else "in arrears"
        out.append(f"Recurring fee: {format_money(fees.recurring.amount, cur)} per period, billed {when}")
    if fees.setup is not None:
        out.append(f"Setup fee: {format_money(fees.setup, cur)}, once")
    if fees.early_termination is not None:
        out.append(f"Early termination fee: {format_money(fees.early_termination, cur)}")
    return out


def describe_revenue_share(share: RevenueShare) -> str:
    if share.model == "fixed":
        return f"Revenue share: {format_decimal(share.percent or Decimal(0))}% of {share.meter}"
    lower = Decimal(0)
    bands = []
    for band in share.bands:
        upper = "and above" if band.up_to is None else f"to {_grouped(band.up_to)}"
        bands.append(f"{format_decimal(band.percent)}% from {_grouped(lower)} {upper}")
        lower = band.up_to if band.up_to is not None else lower
    return f"Revenue share of {share.meter}: {'; '.join(bands)}"


def describe_plan(pricing: PlanPricing, cur: Currency) -> list[str]:
    """Every fee, charge and revenue share of a plan, one sentence each."""
    out = describe_fees(pricing.fees, cur)
    out += [describe_charge(charge, cur) for charge in pricing.charges]
    if pricing.revenue_share is not None:
        out.append(describe_revenue_share(pricing.revenue_share))
    return out
