"""Meters (usage over time, by group) and settings (company, invoice, portal theme)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from pydantic import ValidationError
from sqlalchemy import select
from starlette.datastructures import FormData
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tollway.deps import SessionDep
from tollway.errors import FieldError, TollwayError, validation_errors_from_pydantic
from tollway.event.endpoints import list_events
from tollway.kit.listing import ListParams
from tollway.kit.time import utcnow
from tollway.meter.endpoints import meter_usage
from tollway.models import Meter
from tollway.settings.schemas import ProviderSettings
from tollway.settings.service import get_provider_settings, update_provider_settings
from tollway.web.console.auth import CsrfDep, FormDep, OperatorDep
from tollway.web.console.common import console_page, error_text

router = APIRouter(include_in_schema=False)
DAYS = (7, 30, 90)
EVENTS_PAGE = 50


@router.get("/console/meters", response_class=HTMLResponse)
def meters_page(
    operator: OperatorDep,
    session: SessionDep,
    meter: str | None = Query(default=None, max_length=200),
    group_by: str | None = Query(default=None, max_length=200),
    days: int = Query(default=30),
) -> HTMLResponse:
    """Every meter; for the chosen one, its value per day over every customer (optionally one
    series per value of one of its group-by properties), read like ``GET /v1/meters/{key}/usage``."""
    meters = list(session.scalars(select(Meter).order_by(Meter.key)))
    chosen = next((m for m in meters if m.key == meter), meters[0] if meters else None)
    days = days if days in DAYS else 30
    context: dict[str, Any] = {"meters": meters, "chosen": chosen, "days": days, "days_options": DAYS,
                               "group_by": group_by or "", "series": []}  # fmt: skip
    if chosen is not None:
        end = utcnow()
        start = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
        group = group_by if group_by in (chosen.group_by or []) else None
        try:
            usage = meter_usage(chosen.key, session, customer=None, from_=start.isoformat(), to=end.isoformat(),
                                window="day", group_by=[group] if group else None, tz="UTC")  # fmt: skip
        except TollwayError as exc:
            context["error"] = error_text(exc)
        else:
            series: dict[str, dict[str, Any]] = {}
            for row in usage.data:
                name = (row.groups or {}).get(group, "(none)") if group else chosen.name or chosen.key
                value = Decimal(row.value or 0)
                s = series.setdefault(str(name), {"label": str(name), "x": [], "y": [], "total": Decimal(0)})
                s["x"].append(int(row.from_.timestamp()))
                s["y"].append(float(value))  # drawing only: the total shown is the decimal
                s["total"] += value
            used = [s for s in series.values() if any(s["y"])]
            context["series"] = sorted(used, key=lambda s: -s["total"])[:12]
            context["group"] = group
    return console_page("console/meters.html", operator, active="meters", **context)


_SECTIONS = {
    "company": ("name", "address", "tax_id", "email", "logo_url"),
    "invoice": ("payment_terms_days", "payment_instructions", "footer"),
    "portal": ("title", "primary_color", "logo_url", "frame_ancestors", "self_service"),
}


def settings_from_form(form: FormData) -> dict[str, dict[str, Any]]:
    """The PUT body the settings form describes: blank text fields are null."""
    body: dict[str, dict[str, Any]] = {}
    for section, fields in _SECTIONS.items():
        out: dict[str, Any] = {}
        for name in fields:
            raw = form.get(f"{section}.{name}")
            text = raw.strip().replace("\r\n", "\n") if isinstance(raw, str) else ""
            if name == "self_service":
                out[name] = raw == "on"
            elif name == "frame_ancestors":
                out[name] = [line.strip() for line in text.splitlines() if line.strip()]
            elif name == "payment_terms_days":
                out[name] = text or 0
            else:
                out[name] = text or None
        body[section] = out
    return body


def _settings_page(operator: Any, values: ProviderSettings | dict[str, Any], *, errors: list[FieldError] | None = None,
                   saved: bool = False, status_code: int = 200) -> HTMLResponse:  # fmt: skip
    doc = values.model_dump() if isinstance(values, ProviderSettings) else values
    return console_page("console/settings.html", operator, active="settings", s=doc, errors=errors or [], saved=saved,
                        status_code=status_code)  # fmt: skip


@router.get("/console/settings", response_class=HTMLResponse)
def settings_page(operator: OperatorDep, session: SessionDep, saved: int = 0) -> HTMLResponse:
    return _settings_page(operator, get_provider_settings(session), saved=bool(saved))


@router.post("/console/settings", response_model=None)
def save_settings(operator: CsrfDep, form: FormDep, session: SessionDep) -> Response:
    body = settings_from_form(form)
    try:
        changes = ProviderSettings.model_validate(body)
        with session.begin_nested():
            update_provider_settings(session, changes)
    except ValidationError as exc:
        return _settings_page(operator, body, errors=validation_errors_from_pydantic(exc.errors()), status_code=422)
    except TollwayError as exc:
        return _settings_page(operator, body, errors=exc.errors or [FieldError("settings", exc.message)],
                              status_code=exc.status)  # fmt: skip
    return RedirectResponse("/console/settings?saved=1", status_code=303)


@router.get("/console/events", response_class=HTMLResponse)
def events_page(
    operator: OperatorDep,
    session: SessionDep,
    customer: str | None = Query(default=None, max_length=200),
    type: str | None = Query(default=None, max_length=200),
    after: str | None = Query(default=None, max_length=500),
) -> HTMLResponse:
    """The integration debugger: stored events newest first, filtered by customer and type, with
    the events of customers that do not exist marked (``GET /v1/events``)."""
    context: dict[str, Any] = {"customer": customer or "", "type": type or "", "events": [], "next_after": None}
    try:
        page = list_events(session, ListParams(limit=EVENTS_PAGE, after=after), customer=customer or None,
                           type=type or None, from_=None, to=None)  # fmt: skip
    except TollwayError as exc:
        context["error"] = error_text(exc)
    else:
        context.update(events=page.data, next_after=page.next, unknown=page.unknown_customers,
                       customer_exists=page.customer_exists)  # fmt: skip
    return console_page("console/events.html", operator, active="events", **context)
