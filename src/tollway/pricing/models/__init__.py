"""The registry of charge models: model name -> pricing function.

Every function has the signature ``(charge, usage, currency) -> PricedCharge``
and prices one charge (without dimensions) for one period; free units are
taken off the period quantity first.  Use
:func:`tollway.pricing.price_charge`, which also handles per-dimension
prices, rather than calling them directly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from tollway.kit.money import Currency
from tollway.pricing.charges import Charge
from tollway.pricing.errors import PricingValidationError
from tollway.pricing.lines import PricedCharge, Usage
from tollway.pricing.models import bundle, flat, graduated, package, percentage, stairstep, volume

__all__ = ["REGISTRY", "ModelFunction", "get_model"]

ModelFunction = Callable[[Charge, Usage, Currency], PricedCharge]

REGISTRY: Mapping[str, ModelFunction] = MappingProxyType(
    {
        "flat": flat.price,
        "package": package.price,
        "graduated": graduated.price,
        "volume": volume.price,
        "stairstep": stairstep.price,
        "percentage": percentage.price,
        "bundle": bundle.price,
    }
)


def get_model(name: str) -> ModelFunction:
    """The pricing function of model ``name``; :class:`PricingValidationError` if there is none."""
    try:
        return REGISTRY[name]
    except KeyError:
        expected = ", ".join(REGISTRY)
        raise PricingValidationError([("model", f"unknown model {name!r}; expected one of {expected}")]) from None
