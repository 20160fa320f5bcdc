"""``graduated``: each unit at the price of the tier it falls in; a tier's flat fee once if reached."""

from __future__ import annotations

from tollway.kit.money import Currency
from tollway.pricing.charges import Charge
from tollway.pricing.lines import PricedCharge, Usage, sum_amounts
from tollway.pricing.models._common import one_line, split_free_units, usage_line
from tollway.pricing.tiers import graduated_split

__all__ = ["price"]


def price(charge: Charge, usage: Usage, currency: Currency) -> PricedCharge:
    free, billable = split_free_units(charge, usage.quantity)
    tiers = graduated_split(charge.tiers, billable)
    line = usage_line(
        charge,
        currency,
        quantity=usage.quantity,
        free=free,
        billable=billable,
        amount_exact=sum_amounts(t.amount for t in tiers),
        tiers=tiers,
    )
    return one_line(charge, currency, line)
