"""Plan fees: setup (once), recurring (each period, in advance or in arrears), early termination.

Recurring fees are prorated for partial periods by ``days used / days in
period`` when ``prorate`` is set.  Prefer :class:`Proration` (whole days) to a
ready-made Decimal fraction: it multiplies before it divides, so a fee that
prorates to an exact half cent rounds as it should.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from tollway.kit.fields import field_path, format_decimal
from tollway.kit.money import Currency, money_context
from tollway.pricing._fields import Errors, read_bool, read_decimal, read_mapping
from tollway.pricing.errors import PricingInputError, PricingValidationError
from tollway.pricing.lines import PricedLine

__all__ = [
    "Fees",
    "Proration",
    "RecurringFee",
    "early_termination_fee_line",
    "fees_from_dict",
    "prorate",
    "proration_fraction",
    "recurring_fee_line",
    "setup_fee_line",
    "validate_fees",
]

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class RecurringFee:
    """A fee charged every period; ``in_advance`` bills it at the period's start."""

    amount: Decimal
    in_advance: bool = True
    prorate: bool = True


@dataclass(frozen=True, slots=True)
class Fees:
    """The contract's ``fees`` object; ``None`` means no such fee."""

    setup: Decimal | None = None
    early_termination: Decimal | None = None
    recurring: RecurringFee | None = None


@dataclass(frozen=True, slots=True)
class Proration:
    """A partial period in whole days: ``days_used`` of ``days_in_period``."""

    days_used: int
    days_in_period: int

    def __post_init__(self) -> None:
        for name in ("days_used", "days_in_period"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
        if self.days_in_period <= 0:
            raise PricingInputError([("days_in_period", "must be greater than 0")])
        if not 0 <= self.days_used <= self.days_in_period:
            raise PricingInputError([("days_used", "must be between 0 and days_in_period")])

    @property
    def fraction(self) -> Decimal:
        """``days_used / days_in_period`` (60 significant digits when it does not terminate)."""
        with money_context():
            return Decimal(self.days_used) / Decimal(self.days_in_period)

    def apply(self, amount: Decimal) -> Decimal:
        """``amount x days_used / days_in_period``, multiplying first."""
        with money_context():
            return amount * self.days_used / self.days_in_period


def proration_fraction(days_used: int, days_in_period: int) -> Decimal:
    """The period fraction ``days_used / days_in_period`` as a Decimal (e.g. 10 of 31 days)."""
    return Proration(days_used, days_in_period).fraction


def prorate(amount: Decimal, fraction: Decimal | Proration) -> Decimal:
    """``amount`` times the period fraction, exact where the fraction allows."""
    if isinstance(fraction, Proration):
        return fraction.apply(amount)
    _check_fraction(fraction)
    with money_context():
        return amount * fraction


def _check_fraction(fraction: object) -> Decimal:
    if isinstance(fraction, bool) or not isinstance(fraction, Decimal | int):
        raise PricingInputError([("period_fraction", "must be a Decimal between 0 and 1")])
    value = Decimal(fraction)
    if not value.is_finite() or not 0 <= value <= 1:
        raise PricingInputError([("period_fraction", "must be between 0 and 1")])
    return value


def setup_fee_line(amount: Decimal, currency: Currency | str) -> PricedLine:
    """The one-time setup fee, billed on the first invoice (in advance)."""
    return PricedLine.build(
        kind="setup_fee",
        description="Setup fee",
        quantity=ONE,
        amount_exact=amount,
        currency=currency,
        timing="in_advance",
    )


def recurring_fee_line(
    fee: RecurringFee,
    currency: Currency | str,
    period_fraction: Decimal | Proration = ONE,
) -> PricedLine:
    """The recurring fee for one period; prorated by ``period_fraction`` when ``fee.prorate``."""
    if isinstance(period_fraction, Proration):
        fraction = period_fraction.fraction
    else:
        fraction = _check_fraction(period_fraction)
    prorated = fee.prorate and fraction != ONE
    amount = prorate(fee.amount, period_fraction) if fee.prorate else fee.amount
    details: dict[str, object] = {"full_amount": fee.amount, "in_advance": fee.in_advance, "prorated": prorated}
    description = "Recurring fee"
    if prorated:
        details["period_fraction"] = fraction
        if isinstance(period_fraction, Proration):
            details["days_used"] = period_fraction.days_used
            details["days_in_period"] = period_fraction.days_in_period
            description += f" (prorated: {period_fraction.days_used} of {period_fraction.days_in_period} days)"
        else:
            description += f" (prorated: {format_decimal(fraction)} of the period)"
    return PricedLine.build(
        kind="recurring_fee",
        description=description,
        quantity=ONE,
        amount_exact=amount,
        currency=currency,
        timing="in_advance" if fee.in_advance else "in_arrears",
        details=details,
    )


def early_termination_fee_line(amount: Decimal, currency: Currency | str) -> PricedLine:
    """The fee for cancelling before the end of ``contract_months``."""
    return PricedLine.build(
        kind="early_termination_fee",
        description="Early termination fee",
        quantity=ONE,
        amount_exact=amount,
        currency=currency,
    )


def validate_fees(fees: Fees, prefix: str = "fees") -> list[tuple[str, str]]:
    """Problems with ``fees`` as ``(field, message)`` pairs (negative amounts)."""
    errors: Errors = []
    for name, value in (("setup", fees.setup), ("early_termination", fees.early_termination)):
        if value is not None and value < 0:
            errors.append((field_path(prefix, name), "must not be negative"))
    if fees.recurring is not None and fees.recurring.amount < 0:
        errors.append((field_path(field_path(prefix, "recurring"), "amount"), "must not be negative"))
    return errors


def fees_from_dict(data: Mapping[str, object] | None, prefix: str = "fees") -> Fees:
    """The contract's ``fees`` object as :class:`Fees`; :class:`PricingValidationError` when invalid."""
    if data is None:
        return Fees()
    errors: Errors = []
    mapping = read_mapping(data, prefix, errors)
    if mapping is None:
        raise PricingValidationError(errors)
    for key in mapping:
        if key not in {"setup", "early_termination", "recurring"}:
            errors.append((field_path(prefix, key), "unknown field"))
    setup = read_decimal(mapping, "setup", prefix, errors)
    early = read_decimal(mapping, "early_termination", prefix, errors)
    recurring: RecurringFee | None = None
    raw = mapping.get("recurring")
    if raw is not None:
        where = field_path(prefix, "recurring")
        rec = read_mapping(raw, where, errors)
        if rec is not None:
            for key in rec:
                if key not in {"amount", "in_advance", "prorate"}:
                    errors.append((field_path(where, key), "unknown field"))
            amount = read_decimal(rec, "amount", where, errors)
            if amount is None and rec.get("amount") is None:
                errors.append((field_path(where, "amount"), "is required"))
            in_advance = read_bool(rec, "in_advance", where, errors, default=True)
            prorate_flag = read_bool(rec, "prorate", where, errors, default=True)
            if amount is not None:
                recurring = RecurringFee(amount=amount, in_advance=in_advance, prorate=prorate_flag)
    fees = Fees(setup=setup, early_termination=early, recurring=recurring)
    errors.extend(validate_fees(fees, prefix))
    if errors:
        raise PricingValidationError(errors)
    return fees
