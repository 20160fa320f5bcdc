"""The catalog: products, bundles and plans, their validation and lifecycle.

Services take the session first and never commit. Pricing (validation of charges, fees and the
revenue share; previews) is delegated to the pure ``tollway.pricing`` package. The code lives by
use case; this module is the catalog's one entry point for endpoints and other domains:

- ``catalog.products``: products and bundles;
- ``catalog.plan_document``: a plan's fields as a document, stored, compared and validated;
- ``catalog.plans``: the plan lifecycle (drafts, publishing);
- ``catalog.subscribable``: what other domains ask: :func:`plan_pricing` (the pricing package's
  :class:`PlanPricing` of a plan), :func:`plan_notifications`, :func:`plan_limits`, previews,
  :func:`get_subscribable_plan` before creating a subscription, and the meter guard (a meter
  named by a published plan cannot change) that ``app.create_app`` registers.
"""

from __future__ import annotations

from tollway.catalog.plans import create_plan, delete_plan, get_plan, list_plans, publish_plan, update_plan
from tollway.catalog.products import (
    create_bundle,
    create_product,
    get_bundle,
    get_product,
    list_bundles,
    list_products,
    update_bundle,
    update_product,
)
from tollway.catalog.subscribable import (
    PREVIEW_LIMIT,
    get_subscribable_plan,
    plan_limits,
    plan_notifications,
    plan_pricing,
    preview_plan,
    published_plan_meter_guard,
    published_plans_using_meter,
)

__all__ = [
    "PREVIEW_LIMIT",
    "create_bundle",
    "create_plan",
    "create_product",
    "delete_plan",
    "get_bundle",
    "get_plan",
    "get_product",
    "get_subscribable_plan",
    "list_bundles",
    "list_plans",
    "list_products",
    "plan_limits",
    "plan_notifications",
    "plan_pricing",
    "preview_plan",
    "publish_plan",
    "published_plan_meter_guard",
    "published_plans_using_meter",
    "update_bundle",
    "update_plan",
    "update_product",
]
