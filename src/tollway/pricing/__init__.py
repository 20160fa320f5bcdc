"""The pricing engine: pure functions from a charge definition and a period's usage to priced lines.

No database, no clock, no I/O: given quantities (Decimals), charge
definitions and a currency it returns :class:`PricedLine` objects with their
breakdown, shaped like the contract's invoice lines.  See ``docs/pricing.md``.

Main entry points:

- :func:`charge_from_dict` / :func:`plan_pricing_from_dict`: contract JSON -> definitions
  (raise :class:`PricingValidationError` with ``(field, message)`` pairs);
- :func:`price_charge`: one charge, one period;
- :func:`preview`: a whole plan for one period (fees, charges, revenue share);
- fee helpers: :func:`setup_fee_line`, :func:`recurring_fee_line`,
  :func:`early_termination_fee_line`, :func:`proration_fraction`, :class:`Proration`.
"""

from tollway.pricing.charges import (
    MODEL_NAMES,
    MODEL_PARAMS,
    Charge,
    Tier,
    charge_from_dict,
    validate_charge,
)
from tollway.pricing.engine import QuantityInput, ValuesInput, price_charge
from tollway.pricing.errors import PricingError, PricingInputError, PricingValidationError
from tollway.pricing.fees import (
    Fees,
    Proration,
    RecurringFee,
    early_termination_fee_line,
    fees_from_dict,
    prorate,
    proration_fraction,
    recurring_fee_line,
    setup_fee_line,
    validate_fees,
)
from tollway.pricing.lines import LineKind, PricedCharge, PricedLine, TierLine, Timing, Usage
from tollway.pricing.models import REGISTRY, ModelFunction, get_model
from tollway.pricing.plan import PlanPricing, Preview, plan_pricing_from_dict, preview
from tollway.pricing.revenue_share import (
    RevenueBand,
    RevenueShare,
    price_revenue_share,
    revenue_share_from_dict,
    validate_revenue_share,
)

__all__ = [
    "MODEL_NAMES",
    "MODEL_PARAMS",
    "REGISTRY",
    "Charge",
    "Fees",
    "LineKind",
    "ModelFunction",
    "PlanPricing",
    "Preview",
    "PricedCharge",
    "PricedLine",
    "PricingError",
    "PricingInputError",
    "PricingValidationError",
    "Proration",
    "QuantityInput",
    "RecurringFee",
    "RevenueBand",
    "RevenueShare",
    "Tier",
    "TierLine",
    "Timing",
    "Usage",
    "ValuesInput",
    "charge_from_dict",
    "early_termination_fee_line",
    "fees_from_dict",
    "get_model",
    "plan_pricing_from_dict",
    "preview",
    "price_charge",
    "price_revenue_share",
    "prorate",
    "proration_fraction",
    "recurring_fee_line",
    "revenue_share_from_dict",
    "setup_fee_line",
    "validate_charge",
    "validate_fees",
    "validate_revenue_share",
]
