"""What pricing returns: priced lines with their breakdown, shaped like the contract's invoice lines."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from tollway.kit.fields import format_decimal
from tollway.kit.money import Currency, money_context, money_str, parse_currency, round_money
from tollway.pricing.errors import PricingInputError

__all__ = [
    "LineKind",
    "PricedCharge",
    "PricedLine",
    "TierLine",
    "Timing",
    "Usage",
    "jsonable",
    "sum_amounts",
]

LineKind = Literal[
    "usage",
    "setup_fee",
    "recurring_fee",
    "early_termination_fee",
    "bundle",
    "revenue_share",
    "adjustment",
]
"""The contract's invoice line kinds."""

Timing = Literal["in_advance", "in_arrears"]
"""When a line is billed: at the start of the period it pays for, or after it."""

ZERO = Decimal(0)


def jsonable(value: object) -> object:
    """``value`` with Decimals as strings and tuples as lists, ready for JSON."""
    if isinstance(value, Decimal):
        return format_decimal(value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def sum_amounts(values: Iterable[Decimal]) -> Decimal:
    """An exact sum (in the money context), ``Decimal(0)`` for nothing."""
    with money_context():
        return sum(values, ZERO)


@dataclass(frozen=True, slots=True)
class Usage:
    """The billable input of one charge for one period.

    ``quantity`` is the meter's value for the period.  ``values`` are the
    per-event values a percentage charge with a fixed fee, minimum or maximum
    needs; when given, ``quantity`` is their sum.
    """

    quantity: Decimal
    values: tuple[Decimal, ...] | None = None

    @classmethod
    def of(
        cls,
        quantity: Decimal | int | None = None,
        values: Sequence[Decimal | int] | None = None,
        *,
        where: str = "quantity",
    ) -> Usage:
        """Check and build: quantities and values must be non-negative Decimals (ints accepted)."""
        errors: list[tuple[str, str]] = []
        qty = _check_number(quantity, where, errors) if quantity is not None else None
        vals: tuple[Decimal, ...] | None = None
        if values is not None:
            if isinstance(values, str | bytes) or not isinstance(values, Sequence):
                errors.append((where, "per-event values must be a list of decimals"))
            else:
                checked = [_check_number(v, f"{where}[{i}]", errors) for i, v in enumerate(values)]
                vals = tuple(v for v in checked if v is not None)
        if errors:
            raise PricingInputError(errors)
        if vals is not None:
            total = sum_amounts(vals)
            if qty is not None and qty != total:
                raise PricingInputError([(where, f"quantity {qty} is not the sum of the per-event values ({total})")])
            return cls(quantity=total, values=vals)
        return cls(quantity=qty if qty is not None else ZERO)


def _check_number(value: object, where: str, errors: list[tuple[str, str]]) -> Decimal | None:
    if isinstance(value, bool) or isinstance(value, float):
        errors.append((where, "must be a Decimal, not a float"))
        return None
    if isinstance(value, int):
        value = Decimal(value)
    if not isinstance(value, Decimal):
        errors.append((where, f"must be a Decimal, not {type(value).__name__}"))
        return None
    if not value.is_finite():
        errors.append((where, "must be a finite number"))
        return None
    if value < 0:
        errors.append((where, "must not be negative"))
        return None
    return value


@dataclass(frozen=True, slots=True)
class TierLine:
    """How many units fell in one tier and what they cost (exact amount).

    The tier holds units above ``lower`` up to and including ``up_to``
    (``None``: no upper bound).  ``tier`` is 1-based.
    """

    tier: int
    lower: Decimal
    up_to: Decimal | None
    units: Decimal
    unit_price: Decimal
    flat_fee: Decimal
    amount: Decimal

    def to_dict(self) -> dict[str, object]:
        return {
            "tier": self.tier,
            "from": format_decimal(self.lower),
            "up_to": None if self.up_to is None else format_decimal(self.up_to),
            "units": format_decimal(self.units),
            "unit_price": format_decimal(self.unit_price),
            "flat_fee": format_decimal(self.flat_fee),
            "amount": format_decimal(self.amount),
        }


@dataclass(frozen=True)
class PricedLine:
    """One priced line, mapping onto the contract's invoice line.

    ``amount_exact`` is the unrounded price; ``amount`` is it rounded to the
    currency's minor unit, half up.  Build with :meth:`build` so the two agree.
    """

    kind: LineKind
    description: str
    quantity: Decimal
    amount_exact: Decimal
    amount: Decimal
    currency: str
    charge: str | None = None
    meter: str | None = None
    timing: Timing = "in_arrears"
    tiers: tuple[TierLine, ...] = ()
    details: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        kind: LineKind,
        description: str,
        quantity: Decimal,
        amount_exact: Decimal,
        currency: Currency | str,
        charge: str | None = None,
        meter: str | None = None,
        timing: Timing = "in_arrears",
        tiers: Sequence[TierLine] = (),
        details: Mapping[str, object] | None = None,
    ) -> PricedLine:
        cur = parse_currency(currency)
        return cls(
            kind=kind,
            description=description,
            quantity=quantity,
            amount_exact=amount_exact,
            amount=round_money(amount_exact, cur),
            currency=cur.code,
            charge=charge,
            meter=meter,
            timing=timing,
            tiers=tuple(tiers),
            details=dict(details or {}),
        )

    def to_dict(self) -> dict[str, object]:
        """The contract's invoice line: decimal strings, ``details`` with the breakdown."""
        details: dict[str, object] = {"timing": self.timing, "amount_exact": format_decimal(self.amount_exact)}
        for key, value in self.details.items():
            details[key] = jsonable(value)
        if self.tiers:
            details["tiers"] = [t.to_dict() for t in self.tiers]
        return {
            "kind": self.kind,
            "charge": self.charge,
            "meter": self.meter,
            "description": self.description,
            "quantity": format_decimal(self.quantity),
            "amount": money_str(self.amount, self.currency),
            "details": details,
        }


@dataclass(frozen=True)
class PricedCharge:
    """The lines one charge produced for one period (usually one; bundles and dimensions give more)."""

    charge: str
    model: str
    currency: str
    lines: tuple[PricedLine, ...]

    @property
    def amount(self) -> Decimal:
        """The sum of the rounded lines."""
        return sum_amounts(line.amount for line in self.lines)

    @property
    def amount_exact(self) -> Decimal:
        """The sum of the unrounded lines."""
        return sum_amounts(line.amount_exact for line in self.lines)
