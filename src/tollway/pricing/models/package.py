"""``package``: ``package_price`` x ceil(billable / ``package_size``); a started package is charged whole.

Stripe's ``transform_quantity`` (divide_by, round up), Lago's "package" and
Amberflo's "per block" are this model.
"""

from __future__ import annotations

from decimal import Decimal

from tollway.kit.money import Currency, money_context
from tollway.pricing.charges import Charge
from tollway.pricing.lines import PricedCharge, Usage
from tollway.pricing.models._common import one_line, param, split_free_units, usage_line

__all__ = ["packages_needed", "price"]


def packages_needed(quantity: Decimal, size: Decimal) -> Decimal:
    """Whole packages of ``size`` that cover ``quantity`` (exact: no division rounding)."""
    with money_context():
        whole, rest = divmod(quantity, size)
        return whole + (1 if rest > 0 else 0)


def price(charge: Charge, usage: Usage, currency: Currency) -> PricedCharge:
    size = param(charge, "package_size")
    package_price = param(charge, "package_price")
    free, billable = split_free_units(charge, usage.quantity)
    packages = packages_needed(billable, size)
    with money_context():
        amount = packages * package_price
    line = usage_line(
        charge,
        currency,
        quantity=usage.quantity,
        free=free,
        billable=billable,
        amount_exact=amount,
        details={"packages": packages, "package_size": size, "package_price": package_price},
    )
    return one_line(charge, currency, line)
