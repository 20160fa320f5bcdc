"""``stairstep``: the flat fee of the tier the total falls in, whatever the count inside it.

The last tier may be closed (Apigee's STAIRSTEP caps calls at the last
``end``); a quantity above it is charged the last tier's fee and flagged
``above_last_tier`` in the details (block such usage with a plan limit).
"""

from __future__ import annotations

from decimal import Decimal

from tollway.kit.money import Currency
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
    above = False
    if found is not None:
        index, tier, lower = found
        amount = tier.flat_fee
        above = tier.up_to is not None and billable > tier.up_to
        tiers.append(TierLine(index, lower, tier.up_to, billable, Decimal(0), tier.flat_fee, amount))
    line = usage_line(
        charge,
        currency,
        quantity=usage.quantity,
        free=free,
        billable=billable,
        amount_exact=amount,
        tiers=tiers,
        details={"above_last_tier": above} if above else None,
    )
    return one_line(charge, currency, line)
