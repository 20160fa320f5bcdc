"""``flat``: ``unit_price`` x quantity (Lago's "standard", Amberflo's "per unit")."""

from __future__ import annotations

from tollway.kit.money import Currency, money_context
from tollway.pricing.charges import Charge
from tollway.pricing.lines import PricedCharge, Usage
from tollway.pricing.models._common import one_line, param, split_free_units, usage_line

__all__ = ["price"]


def price(charge: Charge, usage: Usage, currency: Currency) -> PricedCharge:
    unit_price = param(charge, "unit_price")
    free, billable = split_free_units(charge, usage.quantity)
    with money_context():
        amount = billable * unit_price
    line = usage_line(
        charge,
        currency,
        quantity=usage.quantity,
        free=free,
        billable=billable,
        amount_exact=amount,
        details={"unit_price": unit_price},
    )
    return one_line(charge, currency, line)
