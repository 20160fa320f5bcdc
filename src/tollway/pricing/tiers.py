"""Tier arithmetic shared by the graduated, volume and stairstep models.

A tier holds the units above the previous tier's ``up_to`` up to and including
its own ``up_to`` (Stripe's and Lago's convention: with tiers up to 1000 and
beyond, unit 1000 is in the first tier and unit 1000.5 in the second).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from tollway.kit.money import money_context
from tollway.pricing.charges import Tier
from tollway.pricing.lines import TierLine

__all__ = ["graduated_split", "tier_for_total"]

ZERO = Decimal(0)


def graduated_split(tiers: Sequence[Tier], quantity: Decimal) -> list[TierLine]:
    """Fill the tiers in order with ``quantity`` units; one :class:`TierLine` per tier reached.

    A tier's ``flat_fee`` is added once when any units fall in it.  The units
    of the returned lines always add up to ``quantity`` when the last tier is
    open-ended.
    """
    lines: list[TierLine] = []
    lower = ZERO
    with money_context():
        for index, tier in enumerate(tiers, start=1):
            if quantity <= lower:
                break
            top = quantity if tier.up_to is None else min(quantity, tier.up_to)
            units = top - lower
            amount = units * tier.unit_price + tier.flat_fee
            lines.append(TierLine(index, lower, tier.up_to, units, tier.unit_price, tier.flat_fee, amount))
            if tier.up_to is None:
                break
            lower = tier.up_to
    return lines


def tier_for_total(tiers: Sequence[Tier], quantity: Decimal) -> tuple[int, Tier, Decimal] | None:
    """The (1-based index, tier, lower bound) the total ``quantity`` falls in; ``None`` for 0.

    A quantity above a closed last tier (stairstep only) falls in the last tier.
    """
    if quantity <= 0 or not tiers:
        return None
    lower = ZERO
    for index, tier in enumerate(tiers, start=1):
        if tier.up_to is None or quantity <= tier.up_to:
            return index, tier, lower
        lower = tier.up_to
    last = len(tiers)
    previous = tiers[-2].up_to if last > 1 else None
    return last, tiers[-1], previous if previous is not None else ZERO
