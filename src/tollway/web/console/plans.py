"""Plans: the list, a plan's page (its prices in words), and the editor for drafts with a live
price preview.

The editor is a form over the API's plan document: plain fields for the terms and fees, JSON for
the charges (every charge model, with an example of each to start from) and the optional
revenue share, notifications and limits. Saving goes through the same service as
``POST /v1/plans`` / ``PATCH /v1/plans/{code}``; the preview through the pricing engine's
``preview`` (the function behind ``POST /v1/plans/{code}/preview``), recomputed as you type.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tollway.catalog import service as catalog
from tollway.catalog.schemas import PlanCreate, PlanUpdate
from tollway.deps import SessionDep
from tollway.errors import FieldError, TollwayError, validation_errors_from_pydantic
from tollway.kit.money import parse_currency
from tollway.models import Meter, Plan
from tollway.pricing import PricingError
from tollway.pricing.plan import plan_pricing_from_dict, preview
from tollway.pricing.words import describe_plan
from tollway.web.console.auth import CsrfDep, FormDep, OperatorDep
from tollway.web.console.common import console_page, error_text

router = APIRouter(include_in_schema=False)

EXAMPLES: dict[str, dict[str, Any]] = {
    "flat": {"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.002"},
    "package": {"code": "calls", "meter": "api_calls", "model": "package", "package_size": 1000,
                "package_price": "5.00", "free_units": 5000},
    "graduated": {"code": "calls", "meter": "api_calls", "model": "graduated", "tiers": [
        {"up_to": 1000, "unit_price": "0", "flat_fee": "0"}, {"up_to": None, "unit_price": "0.01", "flat_fee": "0"}]},
    "volume": {"code": "calls", "meter": "api_calls", "model": "volume", "tiers": [
        {"up_to": 10000, "unit_price": "0.01"}, {"up_to": None, "unit_price": "0.008"}]},
    "stairstep": {"code": "calls", "meter": "api_calls", "model": "stairstep", "tiers": [
        {"up_to": 1000, "flat_fee": "10.00"}, {"up_to": 10000, "flat_fee": "50.00"},
        {"up_to": None, "flat_fee": "200.00"}]},
    "percentage": {"code": "payments", "meter": "payment_volume", "model": "percentage", "rate": "2.9",
                   "fixed_fee_per_event": "0.30"},
    "bundle": {"code": "calls", "meter": "api_calls", "model": "bundle", "bundle_size": 10000, "bundle_price": "20.00",
               "included_bundles": 1},
    "dimension": {"code": "hours", "meter": "compute_hours", "model": "flat", "unit_price": "30.00",
                  "dimension": "region", "dimension_prices": {"EMEA": {"unit_price": "40.00"}}},
}  # fmt: skip
"""One charge of each model, to start from in the editor."""

_TEXT = ("code", "name", "description", "currency", "interval", "billing_anchor", "visibility")
_INT = ("interval_count", "payment_terms_days", "contract_months", "free_period_days")
_JSON = ("charges", "revenue_share", "notifications", "limits")


def _str(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def body_from_form(form: FormData) -> tuple[dict[str, Any], list[FieldError]]:
    """The plan document the form describes, and what could not be read (named like API fields)."""
    body: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name in _TEXT:
        if _str(form, name):
            body[name] = _str(form, name)
    for name in _INT:
        text = _str(form, name)
        if text:
            try:
                body[name] = int(text)
            except ValueError:
                errors.append(FieldError(name, "must be a whole number"))
    audience = _str(form, "audience_type") or "all"
    values = [v.strip() for v in _str(form, "audience_values").split(",") if v.strip()]
    body["audience"] = {"type": audience, "values": values} if audience != "all" else {"type": "all"}
    fees: dict[str, Any] = {}
    if _str(form, "setup_fee"):
        fees["setup"] = _str(form, "setup_fee")
    if _str(form, "early_termination_fee"):
        fees["early_termination"] = _str(form, "early_termination_fee")
    if _str(form, "recurring_amount"):
        fees["recurring"] = {
            "amount": _str(form, "recurring_amount"),
            "in_advance": form.get("recurring_in_advance") == "on",
            "prorate": form.get("recurring_prorate") == "on",
        }
    body["fees"] = fees or None
    for name in _JSON:
        text = _str(form, name)
        if not text:
            continue
        try:
            body[name] = json.loads(text)
        except json.JSONDecodeError as exc:
            errors.append(FieldError(name, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"))
    return body, errors


def form_from_plan(plan: Plan) -> dict[str, str]:
    """The editor's fields for a stored plan."""
    fees = plan.fees or {}
    recurring = fees.get("recurring") or {}
    audience = plan.audience or {"type": "all"}

    def dump(value: Any) -> str:
        return json.dumps(value, indent=2) if value not in (None, [], {}) else ""

    return {
        "code": plan.code,
        "name": plan.name or "",
        "description": plan.description or "",
        "currency": plan.currency,
        "interval": plan.interval,
        "interval_count": str(plan.interval_count or 1),
        "billing_anchor": plan.billing_anchor,
        "visibility": plan.visibility,
        "audience_type": audience.get("type", "all"),
        "audience_values": ", ".join(audience.get("values") or []),
        "payment_terms_days": "" if plan.payment_terms_days is None else str(plan.payment_terms_days),
        "contract_months": "" if plan.contract_months is None else str(plan.contract_months),
        "free_period_days": str(plan.free_period_days or 0),
        "setup_fee": str(fees.get("setup") or ""),
        "early_termination_fee": str(fees.get("early_termination") or ""),
        "recurring_amount": str(recurring.get("amount") or ""),
        "recurring_in_advance": "on" if recurring.get("in_advance", True) else "",
        "recurring_prorate": "on" if recurring.get("prorate", True) else "",
        "charges": dump(plan.charges),
        "revenue_share": dump(plan.revenue_share),
        "notifications": dump(plan.notifications),
        "limits": dump(plan.limits),
    }


def quantities_from_form(form: FormData) -> tuple[dict[str, str], list[FieldError]]:
    """``code = quantity`` lines (one per charge, or the revenue share's meter)."""
    out: dict[str, str] = {}
    errors: list[FieldError] = []
    for n, line in enumerate(_str(form, "sample").splitlines(), start=1):
        if not line.strip():
            continue
        code, sep, qty = line.partition("=")
        if not sep or not code.strip() or not qty.strip():
            errors.append(FieldError("sample", f"line {n}: write 'charge code = quantity'"))
            continue
        out[code.strip()] = qty.strip().replace(",", "")
    return out, errors


def preview_context(session: Session, form: FormData) -> dict[str, Any]:
    """The editor's preview: the plan in words and priced for the sample quantities, or the
    errors (field names as the API reports them)."""
    body, errors = body_from_form(form)
    quantities, qty_errors = quantities_from_form(form)
    errors += qty_errors
    if errors:
        return {"errors": errors}
    body.setdefault("code", "preview")
    body.setdefault("currency", "USD")
    try:
        definition = PlanCreate.model_validate(body)
    except ValidationError as exc:
        return {"errors": validation_errors_from_pydantic(exc.errors())}
    known = set(session.scalars(select(Meter.key)))
    unknown = [
        FieldError(f"charges[{i}].meter", f"no meter '{c.get('meter')}'")
        for i, c in enumerate(definition.charges)
        if isinstance(c, dict) and c.get("meter") and c.get("meter") not in known
    ]
    doc = definition.model_dump(mode="json")
    try:
        pricing = plan_pricing_from_dict(doc)
        cur = parse_currency(definition.currency)
        priced = preview(pricing, quantities)
    except PricingError as exc:
        return {"errors": [*unknown, *(FieldError(f, m) for f, m in exc.errors)]}
    return {
        "errors": unknown,
        "preview": priced.to_dict(),
        "words": describe_plan(pricing, cur),
        "quantities": quantities,
    }


@router.get("/console/plans", response_class=HTMLResponse)
def plans_page(operator: OperatorDep, session: SessionDep, status: str | None = None) -> HTMLResponse:
    stmt = select(Plan).order_by(Plan.status.desc(), Plan.code)
    if status in ("draft", "published"):
        stmt = stmt.where(Plan.status == status)
    plans = list(session.scalars(stmt.limit(500)))
    return console_page("console/plans.html", operator, active="plans", plans=plans, status=status or "")


def _editor(
    operator: Any,
    session: Session,
    *,
    values: dict[str, str],
    plan: Plan | None,
    errors: list[FieldError] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    meters = list(session.scalars(select(Meter).order_by(Meter.key)))
    return console_page(
        "console/plan_edit.html", operator, active="plans", values=values, plan=plan, errors=errors or [],
        meters=meters, examples={k: json.dumps([v], indent=2) for k, v in EXAMPLES.items()}, status_code=status_code,
    )  # fmt: skip


@router.get("/console/plans/new", response_class=HTMLResponse)
def new_plan(operator: OperatorDep, session: SessionDep) -> HTMLResponse:
    values = {"currency": "USD", "interval": "month", "interval_count": "1", "billing_anchor": "calendar",
              "visibility": "public", "audience_type": "all", "recurring_in_advance": "on", "recurring_prorate": "on",
              "charges": json.dumps([EXAMPLES["package"]], indent=2), "sample": "calls = 12345"}  # fmt: skip
    return _editor(operator, session, values=values, plan=None)


@router.get("/console/plans/{code}", response_class=HTMLResponse)
def plan_page(code: str, operator: OperatorDep, session: SessionDep) -> HTMLResponse:
    plan = catalog.get_plan(session, code)
    if plan.status == "draft":
        values = form_from_plan(plan)
        values["sample"] = "\n".join(f"{c.get('code')} = 1000" for c in plan.charges or [] if isinstance(c, dict))
        return _editor(operator, session, values=values, plan=plan)
    pricing = catalog.plan_pricing(plan)
    words = describe_plan(pricing, parse_currency(plan.currency))
    return console_page("console/plan.html", operator, active="plans", plan=plan, words=words,
                        document=json.dumps(form_from_plan(plan), indent=2))  # fmt: skip


@router.post("/console/plans/preview", response_class=HTMLResponse)
def plan_preview(operator: CsrfDep, form: FormDep, session: SessionDep) -> HTMLResponse:
    return console_page("console/plan_preview.html", operator, **preview_context(session, form))


@router.post("/console/plans", response_model=None)
def save_plan(operator: CsrfDep, form: FormDep, session: SessionDep) -> Response:
    """Create a draft (``code`` new) or save an existing draft (``existing`` names it)."""
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    existing = _str(form, "existing") or None
    plan = session.get(Plan, existing) if existing else None
    body, errors = body_from_form(form)
    if errors:
        return _editor(operator, session, values=values, plan=plan, errors=errors, status_code=422)
    try:
        with session.begin_nested():
            if existing:
                body.pop("code", None)
                saved = catalog.update_plan(session, existing, PlanUpdate.model_validate(body))
            else:
                saved = catalog.create_plan(session, PlanCreate.model_validate(body))
    except ValidationError as exc:
        errors = validation_errors_from_pydantic(exc.errors())
        return _editor(operator, session, values=values, plan=plan, errors=errors, status_code=422)
    except TollwayError as exc:
        errors = exc.errors or [FieldError("plan", exc.message)]
        return _editor(operator, session, values=values, plan=plan, errors=errors, status_code=exc.status)
    return RedirectResponse(f"/console/plans/{saved.code}?saved=1", status_code=303)


@router.post("/console/plans/{code}/publish", response_model=None)
def publish(code: str, operator: CsrfDep, form: FormDep, session: SessionDep) -> Response:
    """Publish after the operator confirmed (the form's ``confirm`` box): the plan is frozen."""
    plan = catalog.get_plan(session, code)
    if form.get("confirm") != "yes":
        values = form_from_plan(plan)
        error = FieldError("confirm", "tick the box to confirm: a published plan's prices can never change")
        return _editor(operator, session, values=values, plan=plan, errors=[error], status_code=422)
    try:
        with session.begin_nested():
            catalog.publish_plan(session, code)
    except TollwayError as exc:
        return _editor(operator, session, values=form_from_plan(plan), plan=plan,
                       errors=exc.errors or [FieldError("plan", error_text(exc))], status_code=exc.status)  # fmt: skip
    return RedirectResponse(f"/console/plans/{code}", status_code=303)
