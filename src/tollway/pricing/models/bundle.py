"""``bundle``: prepaid bundles of transactions (Apigee's "bundles" rate card).

``included_bundles x bundle_price`` is charged in advance at the start of each
period (one ``bundle`` line, timing ``in_advance``, charged even when unused);
usage beyond ``included_bundles x bundle_size`` is charged in whole further
bundles in arrears (a second ``bundle`` line, timing ``in_arrears``).  Free
units come off the period quantity first, as for every model.
"""

from __future__ import annotations

from decimal import Decimal

from tollway.kit.fields import format_decimal
from tollway.kit.money import Currency, money_context
from tollway.pricing.charges import Charge
from tollway.pricing.lines import PricedCharge, PricedLine, Usage
from tollway.pricing.models._common import param, split_free_units, usage_line
from tollway.pricing.models.package import packages_needed

__all__ = ["price"]


def price(charge: Charge, usage: Usage, currency: Currency) -> PricedCharge:
    size = param(charge, "bundle_size")
    bundle_price = param(charge, "bundle_price")
    included = Decimal(charge.included_bundles or 0)
    free, billable = split_free_units(charge, usage.quantity)
    with money_context():
        included_units = included * size
        prepaid_amount = included * bundle_price
        extra_units = max(billable - included_units, Decimal(0))
        extra_bundles = packages_needed(extra_units, size)
        extra_amount = extra_bundles * bundle_price
    common = {"bundle_size": size, "bundle_price": bundle_price, "included_bundles": included}
    lines: list[PricedLine] = []
    if included > 0:
        lines.append(
            usage_line(
                charge,
                currency,
                kind="bundle",
                timing="in_advance",
                quantity=included,
                free=Decimal(0),
                billable=included,
                amount_exact=prepaid_amount,
                description=f"{charge.label}: {format_decimal(included)} prepaid bundles of "
                f"{format_decimal(size)} (in advance)",
                details={**common, "bundles": included, "included_units": included_units},
            )
        )
    lines.append(
        usage_line(
            charge,
            currency,
            kind="bundle",
            quantity=extra_bundles,
            free=free,
            billable=billable,
            amount_exact=extra_amount,
            description=f"{charge.label}: {format_decimal(extra_bundles)} further bundles for "
            f"{format_decimal(extra_units)} units beyond the included {format_decimal(included_units)}",
            details={
                **common,
                "bundles": extra_bundles,
                "usage": usage.quantity,
                "included_units": included_units,
                "units_beyond_included": extra_units,
            },
        )
    )
    return PricedCharge(charge=charge.code, model=charge.model, currency=currency.code, lines=tuple(lines))
