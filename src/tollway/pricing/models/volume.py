"""``volume``: every unit at the price of the tier the total falls in, plus that tier's flat fee.

Not monotone: crossing into a cheaper tier can lower the total (Stripe's own
example notes it).
"""

from __future__ import annotations

from decimal import Decimal

from tollway.kit.money import Currency, money_context
from tollway.pricing.charges import Charge
from tollway.pricing.lines import PricedCharge, TierLine, Usage
from tollway.pricing.models._common import one_line, split_free_units, usage_line
from tollway.pricing.tiers import tier_for_total

__all__ = ["price"]


def price(charge: Charge, usage: Usage, currency: Currency) -> PricedCharge:
    free, billable = split_free_units(charge, usage.quantity)
    found = tier_for_total(charge.tiers, billable)
    tiers: list[TierLine] = []
    amount = Decimal(0)
    if found is not None:
        index, tier, lower = found
        with money_context():
            amount = billable * tier.unit_price + tier.flat_fee
        tiers.append(TierLine(index, lower, tier.up_to, billable, tier.unit_price, tier.flat_fee, amount))
    line = usage_line(
        charge,
        currency,
        quantity=usage.quantity,
        free=free,
        billable=billable,
        amount_exact=amount,
        tiers=tiers,
    )
    return one_line(charge, currency, line)
