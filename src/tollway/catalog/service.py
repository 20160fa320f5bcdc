"""The catalog: products, bundles and plans, their validation and lifecycle.

Services take the session first and never commit. Pricing (validation of charges, fees and the
revenue share; previews) is delegated to the pure ``tollway.pricing`` package.

Other domains call:

- :func:`get_plan`, :func:`plan_pricing` (the pricing package's :class:`PlanPricing` of a plan),
  :func:`plan_notifications`, :func:`plan_limits`;
- :func:`get_subscribable_plan` before creating a subscription.

Importing this module registers the meter mutation guard: a meter named by a published plan
cannot change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.catalog.errors import (
    BundleAlreadyExists,
    BundleInUse,
    BundleNotFound,
    PlanAlreadyExists,
    PlanAlreadyPublished,
    PlanIncomplete,
    PlanNotFound,
    PlanNotSubscribable,
    ProductAlreadyExists,
    ProductNotFound,
    PublishedPlanImmutable,
    field_errors,
    invalid,
)
from tollway.catalog.schemas import (
    BundleCreate,
    BundleUpdate,
    Limit,
    Notifications,
    PlanCreate,
    PlanPreviewRequest,
    PlanUpdate,
    ProductCreate,
    ProductUpdate,
)
from tollway.errors import FieldError, ValidationFailed, validation_errors_from_pydantic
from tollway.kit.pagination import decode_cursor
from tollway.kit.time import utcnow
from tollway.models import Bundle, BundleProduct, Customer, Meter, Plan, PlanMeter, Product
from tollway.pricing import PlanPricing, Preview, PricingError, plan_pricing_from_dict, preview

# ---------------------------------------------------------------------------------- products


def create_product(session: Session, data: ProductCreate) -> Product:
    if session.get(Product, data.code) is not None:
        raise ProductAlreadyExists(data.code)
    product = Product(code=data.code, name=data.name, description=data.description)
    session.add(product)
    session.flush()
    return product


def get_product(session: Session, code: str) -> Product:
    product = session.get(Product, code)
    if product is None:
        raise ProductNotFound(code)
    return product


def update_product(session: Session, code: str, data: ProductUpdate) -> Product:
    product = get_product(session, code)
    for name, value in data.model_dump(exclude_unset=True).items():
        setattr(product, name, value)
    session.flush()
    return product


def list_products(session: Session, *, limit: int, after: str | None) -> list[Product]:
    stmt = select(Product).order_by(Product.code).limit(limit + 1)
    if after:
        stmt = stmt.where(Product.code > decode_cursor(after))
    return list(session.scalars(stmt))


def _existing_products(session: Session, codes: Iterable[str]) -> set[str]:
    wanted = set(codes)
    if not wanted:
        return set()
    return set(session.scalars(select(Product.code).where(Product.code.in_(wanted))))


# ----------------------------------------------------------------------------------- bundles


def _check_products(session: Session, products: list[str]) -> None:
    found = _existing_products(session, products)
    missing = [FieldError(f"products[{i}]", f"product '{p}' does not exist") for i, p in enumerate(products)]
    errors = [e for e, p in zip(missing, products, strict=True) if p not in found]
    if errors:
        raise invalid(errors, "invalid bundle")


def _set_members(bundle: Bundle, products: list[str]) -> None:
    current = {m.product_code: m for m in bundle.members}
    members = []
    for position, code in enumerate(products):
        member = current.get(code) or BundleProduct(product_code=code)
        member.position = position
        members.append(member)
    bundle.members = members


def create_bundle(session: Session, data: BundleCreate) -> Bundle:
    if session.get(Bundle, data.code) is not None:
        raise BundleAlreadyExists(data.code)
    _check_products(session, data.products)
    bundle = Bundle(code=data.code, name=data.name, description=data.description)
    _set_members(bundle, data.products)
    session.add(bundle)
    session.flush()
    return bundle


def get_bundle(session: Session, code: str) -> Bundle:
    bundle = session.get(Bundle, code)
    if bundle is None:
        raise BundleNotFound(code)
    return bundle


def update_bundle(session: Session, code: str, data: BundleUpdate) -> Bundle:
    bundle = session.get(Bundle, code, with_for_update=True)
    if bundle is None:
        raise BundleNotFound(code)
    changes = data.model_dump(exclude_unset=True)
    if "products" in changes:
        products = changes.pop("products")
        if products is None:
            raise ValidationFailed.field("products", "cannot be null")
        _check_products(session, products)
        removed = set(bundle.product_codes) - set(products)
        if removed:
            _guard_bundle_removal(session, code, removed)
        _set_members(bundle, products)
    for name, value in changes.items():
        setattr(bundle, name, value)
    session.flush()
    return bundle


def _guard_bundle_removal(session: Session, bundle: str, removed: set[str]) -> None:
    plans = session.scalars(select(Plan).where(Plan.bundle == bundle, Plan.status == "published").order_by(Plan.code))
    for plan in plans:
        for i, charge in enumerate(plan.charges):
            if charge.get("product") in removed:
                raise BundleInUse(
                    bundle,
                    f"product '{charge['product']}' is charged by the published plan '{plan.code}' (charges[{i}])",
                )


def list_bundles(session: Session, *, limit: int, after: str | None) -> list[Bundle]:
    stmt = select(Bundle).order_by(Bundle.code).limit(limit + 1)
    if after:
        stmt = stmt.where(Bundle.code > decode_cursor(after))
    return list(session.scalars(stmt))


# ------------------------------------------------------------------------ plan documents

_DECIMAL_TEXT = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$")
_NULLABLE = frozenset(
    {
        "name",
        "description",
        "bundle",
        "contract_months",
        "payment_terms_days",
        "fees",
        "revenue_share",
        "notifications",
        "start_date",
        "end_date",
    }
)
_DOCUMENTS = frozenset({"audience", "fees", "charges", "revenue_share", "notifications", "limits"})
_TERMS = (
    "name",
    "description",
    "currency",
    "bundle",
    "interval",
    "interval_count",
    "billing_anchor",
    "visibility",
    "audience",
    "payment_terms_days",
    "contract_months",
    "free_period_days",
    "fees",
    "charges",
    "revenue_share",
    "notifications",
    "limits",
    "start_date",
    "end_date",
)


def _decimals_as_strings(doc: Any) -> Any:
    """A pricing document as stored: every JSON integer becomes a decimal string (floats never
    get this far: the pricing package refuses them)."""
    if isinstance(doc, Mapping):
        return {str(k): _decimals_as_strings(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [_decimals_as_strings(v) for v in doc]
    if isinstance(doc, int) and not isinstance(doc, bool):
        return str(doc)
    return doc


def _jsonable(name: str, value: Any) -> Any:
    """A plan field's value as stored in its column."""
    if name in ("fees", "charges", "revenue_share"):
        return _decimals_as_strings(value)
    if name == "limits":
        return [limit.model_dump(mode="json") for limit in value]
    if name in ("audience", "notifications"):
        return None if value is None else value.model_dump(mode="json")
    return value


def _semantic(value: Any) -> Any:
    """A value for comparison: numbers and decimal strings as Decimals ("5.00" == "5" == 5), nulls
    inside objects dropped (null means absent in plan documents)."""
    if isinstance(value, Mapping):
        return {k: _semantic(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_semantic(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str) and _DECIMAL_TEXT.match(value):
        return Decimal(value.strip())
    return value


def _differs(plan: Plan, name: str, value: Any) -> bool:
    """Whether ``value`` (from a PATCH body) would change the stored field."""
    new, old = _jsonable(name, value), getattr(plan, name)
    if name in _DOCUMENTS:
        return bool(_semantic(new) != _semantic(old))
    return bool(new != old)


def _terms_of(plan: Plan) -> dict[str, Any]:
    """The stored plan as a create body (JSON-shaped, datetimes kept)."""
    terms = {name: getattr(plan, name) for name in _TERMS}
    terms["code"] = plan.code
    return terms


def _definition_of(plan: Plan) -> PlanCreate:
    return PlanCreate.model_validate(_terms_of(plan))


def _meter_keys(definition: PlanCreate) -> list[tuple[str, str]]:
    """``(field, meter key)`` for every meter the plan names."""
    refs: list[tuple[str, str]] = []
    for i, charge in enumerate(definition.charges):
        meter = charge.get("meter")
        if isinstance(meter, str):
            refs.append((f"charges[{i}].meter", meter))
    share = definition.revenue_share
    if isinstance(share, Mapping) and isinstance(share.get("meter"), str):
        refs.append(("revenue_share.meter", share["meter"]))
    if definition.notifications is not None:
        refs.append(("notifications.meter", definition.notifications.meter))
    refs.extend((f"limits[{i}].meter", limit.meter) for i, limit in enumerate(definition.limits))
    return refs


def _validate_definition(session: Session, definition: PlanCreate) -> PlanPricing | None:
    """Every problem with a plan's definition, at once, as a 422 naming each field: pricing (by
    the pricing package), references (meters, products, bundle) and dates."""
    errors: list[FieldError] = []
    pricing: PlanPricing | None = None
    try:
        pricing = plan_pricing_from_dict(
            {
                "currency": definition.currency,
                "fees": definition.fees,
                "charges": definition.charges,
                "revenue_share": definition.revenue_share,
            }
        )
    except PricingError as exc:
        errors.extend(field_errors(exc))

    refs = _meter_keys(definition)
    wanted = {key for _, key in refs}
    meters = {m.key: m for m in session.scalars(select(Meter).where(Meter.key.in_(wanted)))} if wanted else {}
    for where, key in refs:
        if key not in meters:
            errors.append(FieldError(where, f"meter '{key}' does not exist"))

    bundle_products: set[str] | None = None
    if definition.bundle is not None:
        bundle = session.get(Bundle, definition.bundle)
        if bundle is None:
            errors.append(FieldError("bundle", f"bundle '{definition.bundle}' does not exist"))
        else:
            bundle_products = set(bundle.product_codes)
    products = _existing_products(
        session, [c["product"] for c in definition.charges if isinstance(c.get("product"), str)]
    )

    for i, charge in enumerate(definition.charges):
        at = f"charges[{i}]"
        if charge.get("meter") is None:
            errors.append(FieldError(f"{at}.meter", "is required"))
        elif not isinstance(charge["meter"], str):
            errors.append(FieldError(f"{at}.meter", "must be a meter key"))
        product = charge.get("product")
        if product is not None:
            if not isinstance(product, str):
                errors.append(FieldError(f"{at}.product", "must be a product code"))
            elif product not in products:
                errors.append(FieldError(f"{at}.product", f"product '{product}' does not exist"))
            elif bundle_products is not None and product not in bundle_products:
                errors.append(
                    FieldError(
                        f"{at}.product", f"product '{product}' is not in the plan's bundle '{definition.bundle}'"
                    )
                )
        dimension, meter_key = charge.get("dimension"), charge.get("meter")
        meter = meters.get(meter_key) if isinstance(meter_key, str) else None
        if isinstance(dimension, str) and meter is not None and dimension not in (meter.group_by or []):
            allowed = ", ".join(meter.group_by or []) or "none"
            errors.append(
                FieldError(
                    f"{at}.dimension",
                    f"meter '{meter.key}' cannot be grouped by '{dimension}' (its group_by: {allowed})",
                )
            )

    seen: dict[tuple[str, str], int] = {}
    for i, limit in enumerate(definition.limits):
        first = seen.setdefault((limit.meter, limit.action), i)
        if first != i:
            message = f"a '{limit.action}' limit on meter '{limit.meter}' is already limits[{first}]"
            errors.append(FieldError(f"limits[{i}]", message))

    if definition.start_date and definition.end_date and definition.end_date <= definition.start_date:
        errors.append(FieldError("end_date", "must be after start_date"))
    if errors:
        raise invalid(errors)
    return pricing


def _apply(session: Session, plan: Plan, definition: PlanCreate) -> None:
    """Write a validated definition into the row and keep ``plan_meters`` in step."""
    for name in _TERMS:
        setattr(plan, name, _jsonable(name, getattr(definition, name)))
    wanted = list(dict.fromkeys(key for _, key in _meter_keys(definition)))
    current = {link.meter_key: link for link in plan.meter_links}
    plan.meter_links = [current.get(key) or PlanMeter(meter_key=key) for key in wanted]


# ------------------------------------------------------------------------------------- plans


def create_plan(session: Session, data: PlanCreate) -> Plan:
    """Create a plan as a draft; 422 naming every invalid field."""
    if session.get(Plan, data.code) is not None:
        raise PlanAlreadyExists(data.code)
    _validate_definition(session, data)
    plan = Plan(code=data.code, status="draft")
    _apply(session, plan, data)
    session.add(plan)
    session.flush()
    return plan


def get_plan(session: Session, code: str, *, for_update: bool = False) -> Plan:
    plan = session.get(Plan, code, with_for_update=True) if for_update else session.get(Plan, code)
    if plan is None:
        raise PlanNotFound(code)
    return plan


def list_plans(
    session: Session,
    *,
    limit: int,
    after: str | None,
    status: str | None = None,
    visibility: str | None = None,
) -> list[Plan]:
    stmt = select(Plan).order_by(Plan.code).limit(limit + 1)
    if after:
        stmt = stmt.where(Plan.code > decode_cursor(after))
    if status is not None:
        stmt = stmt.where(Plan.status == status)
    if visibility is not None:
        stmt = stmt.where(Plan.visibility == visibility)
    return list(session.scalars(stmt))


def update_plan(session: Session, code: str, data: PlanUpdate) -> Plan:
    """Drafts: any field (the whole plan is validated again). Published plans: only ``end_date``;
    another field given with a value other than the stored one is a 409 naming it."""
    plan = get_plan(session, code, for_update=True)
    given = [name for name in _TERMS if name in data.model_fields_set]
    for name in given:
        if getattr(data, name) is None and name not in _NULLABLE:
            raise ValidationFailed.field(name, "cannot be null")

    if plan.status == "published":
        changed = [name for name in given if name != "end_date" and _differs(plan, name, getattr(data, name))]
        if changed:
            raise PublishedPlanImmutable(code, changed)
        if "end_date" in given:
            end = data.end_date
            if end is not None and plan.start_date is not None and end <= plan.start_date:
                raise ValidationFailed.field("end_date", "must be after start_date")
            plan.end_date = end
        session.flush()
        return plan

    terms = _terms_of(plan)
    for name in given:
        terms[name] = getattr(data, name)
    try:
        definition = PlanCreate.model_validate(terms)
    except ValidationError as exc:  # pragma: no cover - every part was validated on its own
        raise invalid(validation_errors_from_pydantic(exc.errors())) from exc
    _validate_definition(session, definition)
    _apply(session, plan, definition)
    session.flush()
    return plan


def delete_plan(session: Session, code: str) -> None:
    plan = get_plan(session, code, for_update=True)
    if plan.status == "published":
        raise PlanAlreadyPublished(code, "deleted")
    session.delete(plan)
    session.flush()


def publish_plan(session: Session, code: str, *, at: datetime | None = None) -> Plan:
    """Freeze a draft. It must be valid against today's catalog, bill something (a charge, a
    setup fee or a recurring fee) and not have ended already."""
    at = at or utcnow()
    plan = get_plan(session, code, for_update=True)
    if plan.status == "published":
        raise PlanAlreadyPublished(code, "published again")
    definition = _definition_of(plan)
    # Hold the plan's bundle and meters (FOR SHARE on PostgreSQL) until the publish commits, so
    # that neither changes between this validation and the plan becoming published
    # (``update_bundle`` takes the bundle FOR UPDATE before it looks for published plans).
    if plan.bundle is not None:
        session.get(Bundle, plan.bundle, with_for_update={"read": True})
    keys = sorted({key for _, key in _meter_keys(definition)})
    if keys:
        session.execute(select(Meter.key).where(Meter.key.in_(keys)).with_for_update(read=True)).all()
    pricing = _validate_definition(session, definition)
    assert pricing is not None
    problems: list[FieldError] = []
    if not pricing.charges and pricing.fees.setup is None and pricing.fees.recurring is None:
        problems.append(FieldError("charges", "a plan needs at least one charge, a setup fee or a recurring fee"))
    if plan.end_date is not None and plan.end_date <= at:
        problems.append(FieldError("end_date", f"is already past ({plan.end_date.isoformat()})"))
    if problems:
        raise PlanIncomplete(code, problems)
    plan.status = "published"
    plan.published_at = at
    session.flush()
    return plan


# ---------------------------------------------------------------------- for other domains


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
    elif isinstance(doc, str) and _DECIMAL_TEXT.match(doc):
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
