"""What other domains ask the catalog about a plan: its pricing (and a priced preview), its
notifications and limits, whether a customer may subscribe to it, and whether a meter is used
by a published plan (the meter guard ``app.create_app`` registers)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.catalog.errors import PlanNotSubscribable, field_errors, invalid
from tollway.catalog.plan_document import DECIMAL_TEXT
from tollway.catalog.plans import get_plan
from tollway.catalog.schemas import Limit, Notifications, PlanPreviewRequest
from tollway.errors import FieldError
from tollway.models import Customer, Plan, PlanMeter
from tollway.pricing import PlanPricing, Preview, PricingError, plan_pricing_from_dict, preview


def plan_pricing(plan: Plan) -> PlanPricing:
    """The pricing package's view of a plan (currency, fees, charges, revenue share), ready for
    :func:`tollway.pricing.preview` or :func:`tollway.pricing.price_charge`."""
    return plan_pricing_from_dict(
        {"currency": plan.currency, "fees": plan.fees, "charges": plan.charges, "revenue_share": plan.revenue_share}
    )


def plan_notifications(plan: Plan) -> Notifications | None:
    return None if plan.notifications is None else Notifications.model_validate(plan.notifications)


def plan_limits(plan: Plan) -> list[Limit]:
    return [Limit.model_validate(limit) for limit in plan.limits or []]


PREVIEW_LIMIT = Decimal(10) ** 18
"""Preview quantities and per-event values are less than 10^18, like prices (``Numeric(30, 12)``):
every product of the two then stays well inside the 60 digits money is computed with."""


def _too_large(doc: Any, where: str) -> list[FieldError]:
    """The numbers (JSON integers, decimal strings) in a preview document that reach
    :data:`PREVIEW_LIMIT`; everything else is left to the pricing package to judge."""
    if isinstance(doc, Mapping):
        return [e for k, v in doc.items() for e in _too_large(v, f"{where}.{k}")]
    if isinstance(doc, list):
        return [e for i, v in enumerate(doc) for e in _too_large(v, f"{where}[{i}]")]
    number: Decimal | None = None
    if isinstance(doc, int) and not isinstance(doc, bool):
        number = Decimal(doc)
    elif isinstance(doc, str) and DECIMAL_TEXT.match(doc):
        number = Decimal(doc.strip())
    if number is not None and abs(number) >= PREVIEW_LIMIT:
        return [FieldError(where, "must be less than 10^18 in absolute value")]
    return []


def preview_plan(session: Session, code: str, request: PlanPreviewRequest) -> Preview:
    """Price one period of a plan (drafts too) for the given quantities; 422 naming bad input."""
    plan = get_plan(session, code)
    errors = _too_large(request.quantities, "quantities") + _too_large(request.values, "values")
    if errors:
        raise invalid(errors, "invalid preview input")
    try:
        return preview(
            plan_pricing(plan),
            request.quantities,
            request.values,
            request.period_fraction,
            include_setup=request.include_setup_fee,
            include_recurring=request.include_recurring_fee,
            include_early_termination=request.include_early_termination_fee,
        )
    except PricingError as exc:
        raise invalid(field_errors(exc), "invalid preview input") from exc


def _audience_match(plan: Plan, customer: Customer) -> bool:
    audience = plan.audience or {"type": "all"}
    kind, values = audience.get("type", "all"), set(audience.get("values") or [])
    if kind == "all":
        return True
    if kind == "categories":
        return customer.category in values
    if kind == "companies":
        return customer.company in values
    if kind == "customers":
        return customer.id in values
    return False  # pragma: no cover - the schema admits no other type


def get_subscribable_plan(
    session: Session,
    code: str,
    customer: Customer | str,
    *,
    at: datetime,
    via_admin: bool = True,
) -> Plan:
    """The plan a new subscription of ``customer`` starting at ``at`` may use.

    Raises :class:`PlanNotSubscribable` (422) naming ``plan`` when the plan does not exist, is a
    draft, is not available at ``at`` (before ``start_date`` or at/after ``end_date``) or is
    private and the request does not come through the admin API (``via_admin=False``); naming
    ``customer`` when the customer does not exist or is not in the plan's audience.
    """
    plan = session.get(Plan, code)
    if plan is None:
        raise PlanNotSubscribable("plan", f"plan '{code}' does not exist")
    if isinstance(customer, str):
        row = session.get(Customer, customer)
        if row is None:
            raise PlanNotSubscribable("customer", f"customer '{customer}' does not exist")
        customer = row
    if plan.status != "published":
        raise PlanNotSubscribable("plan", f"plan '{code}' is a draft: publish it first")
    if plan.start_date is not None and at < plan.start_date:
        raise PlanNotSubscribable("plan", f"plan '{code}' is available from {plan.start_date.isoformat()}")
    if plan.end_date is not None and at >= plan.end_date:
        raise PlanNotSubscribable("plan", f"plan '{code}' ended at {plan.end_date.isoformat()}")
    if plan.visibility == "private" and not via_admin:
        raise PlanNotSubscribable("plan", f"plan '{code}' is private: only an admin can subscribe customers to it")
    if not _audience_match(plan, customer):
        audience = plan.audience or {}
        raise PlanNotSubscribable(
            "customer",
            f"customer '{customer.id}' is not in the audience of plan '{code}' "
            f"({audience.get('type')}: {', '.join(audience.get('values') or [])})",
        )
    return plan


def published_plans_using_meter(session: Session, key: str, *, limit: int = 10) -> list[str]:
    stmt = (
        select(PlanMeter.plan_code)
        .join(Plan, Plan.code == PlanMeter.plan_code)
        .where(PlanMeter.meter_key == key, Plan.status == "published")
        .order_by(PlanMeter.plan_code)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def published_plan_meter_guard(session: Session, key: str) -> str | None:
    """Meter guard: a meter named by a published plan (charges, revenue share, notifications,
    limits) must not change, or the plan's prices would change under its subscribers."""
    plans = published_plans_using_meter(session, key, limit=4)
    if not plans:
        return None
    names = ", ".join(f"'{p}'" for p in plans[:3]) + (" and others" if len(plans) > 3 else "")
    return f"it is used by the published plan{'s' if len(plans) > 1 else ''} {names}"
