"""A plan's definition as a document: the fields a caller writes, how they are stored and
compared, and their validation against the catalog (pricing by the pure ``tollway.pricing``
package; meters, products and the bundle it names; dates)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from tollway.catalog.errors import field_errors, invalid
from tollway.catalog.products import existing_products
from tollway.catalog.schemas import PlanCreate, PlanTerms
from tollway.errors import FieldError
from tollway.models import Bundle, Meter, Plan, PlanMeter
from tollway.pricing import PlanPricing, PricingError, plan_pricing_from_dict

DECIMAL_TEXT = re.compile(r"^\s*[+-]?(\d+(\.\d*)?|\.\d+)\s*$")


def _admits_none(annotation: Any) -> bool:
    return type(None) in get_args(annotation)


TERMS: tuple[str, ...] = tuple(PlanTerms.model_fields)
"""Every field of a plan a caller writes (``code`` aside), in the order of :class:`PlanTerms`."""
NULLABLE = frozenset(name for name in TERMS if _admits_none(PlanTerms.model_fields[name].annotation))
"""The fields a PATCH may set to null."""
DOCUMENTS = frozenset({"audience", "fees", "charges", "revenue_share", "notifications", "limits"})


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
    if isinstance(value, str) and DECIMAL_TEXT.match(value):
        return Decimal(value.strip())
    return value


def differs(plan: Plan, name: str, value: Any) -> bool:
    """Whether ``value`` (from a PATCH body) would change the stored field."""
    new, old = _jsonable(name, value), getattr(plan, name)
    if name in DOCUMENTS:
        return bool(_semantic(new) != _semantic(old))
    return bool(new != old)


def terms_of(plan: Plan) -> dict[str, Any]:
    """The stored plan as a create body (JSON-shaped, datetimes kept)."""
    terms = {name: getattr(plan, name) for name in TERMS}
    terms["code"] = plan.code
    return terms


def definition_of(plan: Plan) -> PlanCreate:
    return PlanCreate.model_validate(terms_of(plan))


def meter_keys(definition: PlanCreate) -> list[tuple[str, str]]:
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


def validate_definition(session: Session, definition: PlanCreate) -> PlanPricing | None:
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

    refs = meter_keys(definition)
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
    products = existing_products(
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


def apply_definition(session: Session, plan: Plan, definition: PlanCreate) -> None:
    """Write a validated definition into the row and keep ``plan_meters`` in step."""
    for name in TERMS:
        setattr(plan, name, _jsonable(name, getattr(definition, name)))
    wanted = list(dict.fromkeys(key for _, key in meter_keys(definition)))
    current = {link.meter_key: link for link in plan.meter_links}
    plan.meter_links = [current.get(key) or PlanMeter(meter_key=key) for key in wanted]
