"""``percentage``: ``rate`` percent of the summed value, plus optional per-event fee, minimum, maximum.

Per event (Lago's order): ``value x rate / 100 + fixed_fee_per_event``, then
raised to ``min_per_event`` or lowered to ``max_per_event``.  ``free_units`` is
an amount of value that is free: it is used up by the events in the order
given, an event it covers entirely costs nothing (not even the fixed fee), an
event it covers in part pays the rate on the rest and the fixed fee.

Without a fixed fee, minimum or maximum the charge is linear, so it can be
priced from the period's summed value alone (``Usage.values`` may be omitted).
"""

from __future__ import annotations

from decimal import Decimal

from tollway.kit.money import Currency, money_context
from tollway.pricing.charges import Charge
from tollway.pricing.errors import PricingInputError
from tollway.pricing.lines import PricedCharge, Usage
from tollway.pricing.models._common import describe, one_line, param, split_free_units, usage_line

__all__ = ["price"]

ZERO = Decimal(0)


def price(charge: Charge, usage: Usage, currency: Currency) -> PricedCharge:
    rate = param(charge, "rate")
    if usage.values is None:
        if charge.needs_event_values:
            raise PricingInputError(
                [
                    (
                        charge.code,
                        "per-event values are required: this percentage charge has a fixed fee, "
                        "minimum or maximum per event",
                    )
                ]
            )
        free, billable = split_free_units(charge, usage.quantity)
        with money_context():
            amount = billable * rate / 100
        line = usage_line(
            charge,
            currency,
            quantity=usage.quantity,
            free=free,
            billable=billable,
            amount_exact=amount,
            description=describe(charge, usage.quantity, free, unit="in value"),
            details={"rate": rate, "percentage_amount": amount},
        )
        return one_line(charge, currency, line)

    fixed = charge.fixed_fee_per_event
    minimum = charge.min_per_event
    maximum = charge.max_per_event
    remaining_free = charge.free_units
    total = percent_total = fixed_total = ZERO
    charged = free_events = raised = lowered = 0
    with money_context():
        for value in usage.values:
            billable_value = value
            if remaining_free > 0:
                if remaining_free >= value:
                    remaining_free -= value
                    free_events += 1
                    continue
                billable_value = value - remaining_free
                remaining_free = ZERO
            fee = billable_value * rate / 100
            percent_total += fee
            if fixed is not None:
                fee += fixed
                fixed_total += fixed
            if minimum is not None and fee < minimum:
                fee = minimum
                raised += 1
            elif maximum is not None and fee > maximum:
                fee = maximum
                lowered += 1
            total += fee
            charged += 1
        free_value = charge.free_units - remaining_free
        billable = usage.quantity - free_value
    line = usage_line(
        charge,
        currency,
        quantity=usage.quantity,
        free=free_value,
        billable=billable,
        amount_exact=total,
        description=describe(charge, usage.quantity, free_value, unit="in value") + f", {len(usage.values)} events",
        details={
            "rate": rate,
            "events": len(usage.values),
            "charged_events": charged,
            "free_events": free_events,
            "percentage_amount": percent_total,
            "fixed_fees": fixed_total,
            "raised_to_minimum": raised,
            "lowered_to_maximum": lowered,
        },
    )
    return one_line(charge, currency, line)
