"""Helpers shared by the model functions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

from tollway.kit.fields import format_decimal
from tollway.kit.money import Currency, money_context
from tollway.pricing.charges import Charge
from tollway.pricing.errors import PricingValidationError
from tollway.pricing.lines import LineKind, PricedCharge, PricedLine, TierLine, Timing

__all__ = ["describe", "one_line", "param", "split_free_units", "usage_line"]

ZERO = Decimal(0)


def param(charge: Charge, name: str) -> Decimal:
    """A Decimal price parameter the model needs; a clear error when the charge lacks it."""
    value = getattr(charge, name)
    if not isinstance(value, Decimal):
        raise PricingValidationError([(name, f"is required for the '{charge.model}' model")])
    return value


def split_free_units(charge: Charge, quantity: Decimal) -> tuple[Decimal, Decimal]:
    """``(free units applied, billable quantity)``: free units come off the period quantity first."""
    with money_context():
        free = min(quantity, charge.free_units)
        return free, quantity - free


def describe(charge: Charge, quantity: Decimal, free: Decimal, unit: str = "units") -> str:
    text = f"{charge.label}: {format_decimal(quantity)} {unit}"
    if free > 0:
        text += f" ({format_decimal(free)} free)"
    return text


def usage_line(
    charge: Charge,
    currency: Currency,
    *,
    quantity: Decimal,
    free: Decimal,
    billable: Decimal,
    amount_exact: Decimal,
    description: str | None = None,
    kind: LineKind = "usage",
    timing: Timing = "in_arrears",
    tiers: Sequence[TierLine] = (),
    details: Mapping[str, object] | None = None,
) -> PricedLine:
    all_details: dict[str, object] = {
        "model": charge.model,
        "free_units": free,
        "billable_quantity": billable,
    }
    all_details.update(details or {})
    return PricedLine.build(
        kind=kind,
        description=description or describe(charge, quantity, free),
        quantity=quantity,
        amount_exact=amount_exact,
        currency=currency,
        charge=charge.code,
        meter=charge.meter,
        timing=timing,
        tiers=tiers,
        details=all_details,
    )


def one_line(charge: Charge, currency: Currency, line: PricedLine) -> PricedCharge:
    return PricedCharge(charge=charge.code, model=charge.model, currency=currency.code, lines=(line,))
