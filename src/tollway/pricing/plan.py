"""Pricing a whole plan for one period: fees, every charge and the revenue share.

:func:`preview` is what the plan preview endpoint and the invoice builder call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from tollway.kit.fields import field_path
from tollway.kit.money import Currency, CurrencyError, money_str, parse_currency
from tollway.pricing._fields import Errors, parse_decimal_value, read_mapping, read_str
from tollway.pricing.charges import Charge, charge_from_dict, validate_charge
from tollway.pricing.engine import price_charge
from tollway.pricing.errors import PricingError, PricingInputError, PricingValidationError
from tollway.pricing.fees import (
    Fees,
    Proration,
    early_termination_fee_line,
    fees_from_dict,
    recurring_fee_line,
    setup_fee_line,
    validate_fees,
)
from tollway.pricing.lines import PricedLine, sum_amounts
from tollway.pricing.revenue_share import (
    RevenueShare,
    price_revenue_share,
    revenue_share_from_dict,
    validate_revenue_share,
)

__all__ = ["PlanPricing", "Preview", "plan_pricing_from_dict", "preview"]

ONE = Decimal(1)


@dataclass(frozen=True)
class PlanPricing:
    """The priced part of a plan: currency, fees, charges and revenue share."""

    charges: tuple[Charge, ...] = ()
    fees: Fees = field(default_factory=Fees)
    revenue_share: RevenueShare | None = None
    currency: Currency | None = None

    def charge(self, code: str) -> Charge:
        """The charge with ``code``; ``KeyError`` when there is none."""
        for charge in self.charges:
            if charge.code == code:
                return charge
        raise KeyError(code)


def plan_pricing_from_dict(data: Mapping[str, object], *, ignore_unknown_charge_fields: bool = False) -> PlanPricing:
    """The pricing of the contract's plan JSON (``currency``, ``fees``, ``charges``, ``revenue_share``).

    Other plan keys (name, interval, audience...) are not pricing and are left
    alone.  Raises :class:`PricingValidationError` with every problem found,
    named as in the JSON (``"charges[1].tiers[0].up_to"``, ``"fees.setup"``).
    """
    errors: Errors = []
    mapping = read_mapping(data, "plan", errors)
    if mapping is None:
        raise PricingValidationError(errors)
    currency: Currency | None = None
    code = read_str(mapping, "currency", "", errors)
    if code is not None:
        try:
            currency = parse_currency(code)
        except CurrencyError as exc:
            errors.append(("currency", str(exc)))
    fees = Fees()
    raw_fees = mapping.get("fees")
    if raw_fees is not None:
        try:
            fees = fees_from_dict(raw_fees, "fees")  # type: ignore[arg-type]
        except PricingError as exc:
            errors.extend(exc.errors)
    charges: list[Charge] = []
    raw_charges = mapping.get("charges")
    if raw_charges is not None:
        if not isinstance(raw_charges, list | tuple):
            errors.append(("charges", "must be a list of charges"))
        else:
            seen: dict[str, int] = {}
            for i, raw in enumerate(raw_charges):
                where = field_path("charges", i)
                try:
                    charge = charge_from_dict(raw, where, ignore_unknown=ignore_unknown_charge_fields)
                except PricingError as exc:
                    errors.extend(exc.errors)
                    continue
                if charge.code in seen:
                    errors.append(
                        (field_path(where, "code"), f"duplicate charge code (also charges[{seen[charge.code]}])")
                    )
                seen.setdefault(charge.code, i)
                charges.append(charge)
    share: RevenueShare | None = None
    raw_share = mapping.get("revenue_share")
    if raw_share is not None:
        try:
            share = revenue_share_from_dict(raw_share, "revenue_share")  # type: ignore[arg-type]
        except PricingError as exc:
            errors.extend(exc.errors)
    if errors:
        raise PricingValidationError(errors)
    return PlanPricing(charges=tuple(charges), fees=fees, revenue_share=share, currency=currency)


@dataclass(frozen=True)
class Preview:
    """A priced period: its lines, the subtotal (sum of rounded lines) and the total.

    Pricing knows no tax: ``total`` equals ``subtotal``; the invoice adds tax.
    """

    currency: Currency
    lines: tuple[PricedLine, ...]

    @property
    def subtotal(self) -> Decimal:
        return sum_amounts(line.amount for line in self.lines)

    @property
    def total(self) -> Decimal:
        return self.subtotal

    def to_dict(self) -> dict[str, object]:
        """The contract's preview response body."""
        return {
            "currency": self.currency.code,
            "lines": [line.to_dict() for line in self.lines],
            "subtotal": money_str(self.subtotal, self.currency),
            "total": money_str(self.total, self.currency),
        }


def _validate_plan(plan: PlanPricing) -> None:
    errors: Errors = []
    for i, charge in enumerate(plan.charges):
        errors.extend(validate_charge(charge, field_path("charges", i)))
    errors.extend(validate_fees(plan.fees))
    if plan.revenue_share is not None:
        errors.extend(validate_revenue_share(plan.revenue_share))
    if errors:
        raise PricingValidationError(errors)


def _as_decimal(value: object, where: str, errors: Errors) -> object:
    """Accept decimal strings from JSON as well as Decimals; anything else is checked later."""
    if isinstance(value, str):
        parsed = parse_decimal_value(value)
        if isinstance(parsed, str):
            errors.append((where, parsed))
            return None
        return parsed
    if isinstance(value, Mapping):
        return {k: _as_decimal(v, field_path(where, k), errors) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_as_decimal(v, field_path(where, i), errors) for i, v in enumerate(value)]
    return value


def preview(
    plan: PlanPricing,
    quantities: Mapping[str, object] | None = None,
    values: Mapping[str, object] | None = None,
    period_fraction: Decimal | Proration = ONE,
    currency: Currency | str | None = None,
    *,
    include_setup: bool = False,
    include_recurring: bool = True,
    include_early_termination: bool = False,
) -> Preview:
    """Price one period of ``plan``.

    - ``quantities``: charge code -> period quantity (for a dimension charge, a
      mapping dimension value -> quantity); the revenue share's meter key ->
      the period's revenue.  A charge without a quantity is priced at 0.
    - ``values``: charge code -> per-event values (percentage charges with a
      fixed fee, minimum or maximum need them).
    - ``period_fraction``: the share of the period used, for prorated
      recurring fees (``Decimal`` or, better, a :class:`Proration`).
    - Decimal strings are accepted wherever a Decimal is, floats never.

    Lines come in this order: setup fee, recurring fee, one or more lines per
    charge in plan order, revenue share, early termination fee.  Raises
    :class:`PricingInputError` (field names like ``"quantities.calls"``) or
    :class:`PricingValidationError`.
    """
    _validate_plan(plan)
    if currency is None and plan.currency is None:
        raise PricingInputError([("currency", "is required: the plan has none")])
    cur = parse_currency(currency if currency is not None else plan.currency)  # type: ignore[arg-type]
    errors: Errors = []
    qty: Mapping[str, object] = _as_decimal(dict(quantities or {}), "quantities", errors)  # type: ignore[assignment]
    vals: Mapping[str, object] = _as_decimal(dict(values or {}), "values", errors)  # type: ignore[assignment]
    codes = {c.code for c in plan.charges}
    share_meter = plan.revenue_share.meter if plan.revenue_share is not None else None
    for key in qty:
        if key not in codes and key != share_meter:
            errors.append(
                (field_path("quantities", key), "is neither a charge code of this plan nor its revenue share meter")
            )
    for key in vals:
        if key not in codes:
            errors.append((field_path("values", key), "is not a charge code of this plan"))
    if errors:
        raise PricingInputError(errors)

    lines: list[PricedLine] = []
    fees = plan.fees
    if include_setup and fees.setup is not None:
        lines.append(setup_fee_line(fees.setup, cur))
    if include_recurring and fees.recurring is not None:
        lines.append(recurring_fee_line(fees.recurring, cur, period_fraction))
    for charge in plan.charges:
        priced = price_charge(
            charge,
            qty.get(charge.code),  # type: ignore[arg-type]
            cur,
            values=vals.get(charge.code),  # type: ignore[arg-type]
            where=field_path("quantities", charge.code),
        )
        lines.extend(priced.lines)
    if plan.revenue_share is not None:
        revenue = qty.get(plan.revenue_share.meter, Decimal(0))
        where = field_path("quantities", plan.revenue_share.meter)
        if not isinstance(revenue, Decimal | int) or isinstance(revenue, bool):
            raise PricingInputError([(where, 'must be a decimal string such as "1250.00"')])
        if not Decimal(revenue).is_finite() or revenue < 0:
            raise PricingInputError([(where, "must not be negative")])
        lines.append(price_revenue_share(plan.revenue_share, Decimal(revenue), cur))
    if include_early_termination and fees.early_termination is not None:
        lines.append(early_termination_fee_line(fees.early_termination, cur))
    return Preview(currency=cur, lines=tuple(lines))
