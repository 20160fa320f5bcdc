"""Pricing one charge for one period: dispatch to the model, per dimension value when asked."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from decimal import Decimal

from tollway.kit.money import Currency, parse_currency
from tollway.pricing.charges import Charge, validate_charge
from tollway.pricing.errors import PricingInputError, PricingValidationError
from tollway.pricing.lines import PricedCharge, PricedLine, Usage
from tollway.pricing.models import get_model

__all__ = ["QuantityInput", "ValuesInput", "price_charge"]

QuantityInput = Decimal | int | Mapping[str, Decimal | int]
"""A period quantity, or for a dimension charge a mapping dimension value -> quantity."""

ValuesInput = Sequence[Decimal | int] | Mapping[str, Sequence[Decimal | int]]
"""Per-event values (percentage charges), or per dimension value."""


def price_charge(
    charge: Charge,
    quantity: QuantityInput | None,
    currency: Currency | str,
    *,
    values: ValuesInput | None = None,
    where: str | None = None,
) -> PricedCharge:
    """Price ``charge`` for one period of usage.

    ``quantity`` is the period's meter value (``None`` counts as 0 unless
    ``values`` are given).  For a charge with a ``dimension``, pass a mapping
    dimension value -> quantity (and values); each value is priced on its own
    with its ``dimension_prices`` entry, or the charge's params when it has
    none, and gives its own line.  ``where`` names the input in errors
    (default: the charge code).

    Raises :class:`PricingValidationError` for an invalid charge and
    :class:`PricingInputError` for input that does not fit it.
    """
    problems = validate_charge(charge)
    if problems:
        raise PricingValidationError(problems)
    cur = parse_currency(currency)
    model = get_model(charge.model)
    name = where or charge.code
    if not isinstance(quantity, Mapping) and not isinstance(values, Mapping):
        return model(charge.base(), Usage.of(quantity, values, where=name), cur)

    if charge.dimension is None:
        raise PricingInputError([(name, "this charge has no dimension: give one quantity, not a mapping")])
    if quantity is not None and not isinstance(quantity, Mapping):
        raise PricingInputError([(name, f"give a quantity per '{charge.dimension}' value (a mapping)")])
    if values is not None and not isinstance(values, Mapping):
        raise PricingInputError([(name, f"give per-event values per '{charge.dimension}' value (a mapping)")])
    quantities: Mapping[str, Decimal | int] = quantity or {}
    per_value: Mapping[str, Sequence[Decimal | int]] = values or {}
    keys = sorted(set(quantities) | set(per_value))
    if not keys:
        return model(charge.base(), Usage(quantity=Decimal(0)), cur)
    lines: list[PricedLine] = []
    for key in keys:
        usage = Usage.of(quantities.get(key), per_value.get(key), where=f"{name}.{key}")
        priced = model(charge.for_dimension(key), usage, cur)
        lines.extend(_tag(line, charge, key) for line in priced.lines)
    return PricedCharge(charge=charge.code, model=charge.model, currency=cur.code, lines=tuple(lines))


def _tag(line: PricedLine, charge: Charge, value: str) -> PricedLine:
    assert charge.dimension is not None
    label = f"{charge.label} [{charge.dimension}={value}]"
    description = line.description
    if description.startswith(charge.label):
        description = label + description[len(charge.label) :]
    details = dict(line.details)
    details["dimension"] = {charge.dimension: value}
    details["dimension_priced"] = value in charge.dimension_prices
    return dataclasses.replace(line, description=description, details=details)
