"""Invoices (list, filters, one invoice, its PDF) and the pricing simulator."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import select
from starlette.responses import HTMLResponse, RedirectResponse, Response

from tollway.deps import SessionDep
from tollway.errors import TollwayError
from tollway.invoice import endpoints as invoice_api
from tollway.invoice import reporting
from tollway.invoice import service as invoices
from tollway.invoice.simulate import simulation_schema
from tollway.kit.money import from_minor_units
from tollway.kit.time import utcnow
from tollway.models import Invoice, Plan
from tollway.web.console.auth import CsrfDep, OperatorDep
from tollway.web.console.common import console_page, error_text

router = APIRouter(include_in_schema=False)
PAGE = 100
STATUSES = ("finalized", "paid", "void")


def _month(value: str | None, default: datetime) -> datetime:
    """``YYYY-MM`` (an ``<input type=month>``) as the first instant of that month in UTC."""
    if value:
        try:
            year, month = (int(part) for part in value.split("-", 1))
            return datetime(year, month, 1, tzinfo=UTC)
        except ValueError:
            pass
    return default


@router.get("/console/invoices", response_class=HTMLResponse)
def invoices_page(
    operator: OperatorDep,
    session: SessionDep,
    customer: str | None = Query(default=None, max_length=200),
    status: str | None = Query(default=None, max_length=20),
    month: str | None = Query(default=None, max_length=7, description="YYYY-MM: periods starting that month"),
    before: str | None = Query(default=None, max_length=80, description="keyset: period_start|id of the last row"),
) -> HTMLResponse:
    stmt = select(Invoice).order_by(Invoice.period_start.desc(), Invoice.id.desc()).limit(PAGE + 1)
    if customer:
        stmt = stmt.where(Invoice.customer_id == customer)
    if status in STATUSES:
        stmt = stmt.where(Invoice.status == status)
    start = _month(month, datetime.min.replace(tzinfo=UTC)) if month else None
    if start is not None:
        stmt = stmt.where(
            Invoice.period_start >= start, Invoice.period_start < reporting.month_start(start, months_back=-1)
        )
    if before and "|" in before:
        at, _, last_id = before.partition("|")
        try:
            moment = datetime.fromisoformat(at)
        except ValueError:
            moment = None
        if moment is not None:
            stmt = stmt.where(
                (Invoice.period_start < moment) | ((Invoice.period_start == moment) & (Invoice.id < last_id))
            )
    rows = list(session.scalars(stmt))
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    cursor = f"{rows[-1].period_start.isoformat()}|{rows[-1].id}" if more and rows else None
    view = [
        {
            "id": r.id,
            "number": r.number,
            "customer": r.customer_id,
            "plan": r.plan_code,
            "period_start": r.period_start,
            "period_end": r.period_end,
            "status": r.status,
            "due_at": r.due_at,
            "currency": r.currency,
            "total": from_minor_units(r.total_minor, r.currency),
        }
        for r in rows
    ]
    return console_page(
        "console/invoices.html",
        operator,
        active="invoices",
        invoices=view,
        customer=customer or "",
        status=status or "",
        month=month or "",
        statuses=STATUSES,
        next_before=cursor,
    )


@router.get("/console/invoices/{invoice_id}", response_class=HTMLResponse)
def invoice_page(invoice_id: str, operator: OperatorDep, session: SessionDep) -> HTMLResponse:
    invoice = invoices.to_schema(session, invoices.get_invoice(session, invoice_id))
    return console_page("console/invoice.html", operator, active="invoices", invoice=invoice)


@router.get("/console/invoices/{invoice_id}/pdf", response_model=None)
def invoice_pdf(invoice_id: str, operator: OperatorDep, session: SessionDep) -> Response:
    return invoice_api.invoice_pdf(invoice_id, session)


@router.post("/console/invoices/{invoice_id}/{action}", response_model=None)
def invoice_action(invoice_id: str, action: str, operator: CsrfDep, session: SessionDep) -> Response:
    """Mark paid or void, through the same service as the API."""
    try:
        with session.begin_nested():
            if action == "mark-paid":
                invoices.mark_paid(session, invoice_id, now=utcnow())
            elif action == "void":
                invoices.void_invoice(session, invoice_id, now=utcnow())
            else:
                return Response(status_code=404)
    except TollwayError as exc:
        invoice = invoices.to_schema(session, invoices.get_invoice(session, invoice_id))
        return console_page("console/invoice.html", operator, active="invoices", invoice=invoice,
                            error=error_text(exc), status_code=exc.status)  # fmt: skip
    return RedirectResponse(f"/console/invoices/{invoice_id}", status_code=303)


@router.get("/console/simulator", response_class=HTMLResponse)
def simulator_page(
    operator: OperatorDep,
    session: SessionDep,
    plan: str | None = Query(default=None, max_length=200),
    month: str | None = Query(default=None, max_length=7),
) -> HTMLResponse:
    """Pick a plan and a past month: every invoice of periods starting that month, priced on the
    plan, beside what was invoiced (:func:`tollway.invoice.simulate.simulate_plan`)."""
    now = utcnow()
    start = _month(month, reporting.month_start(now, months_back=1))
    end = reporting.month_start(start, months_back=-1)
    plans = list(session.scalars(select(Plan).order_by(Plan.status, Plan.code)))
    context: dict[str, Any] = {"plans": plans, "plan": plan or "", "month": f"{start:%Y-%m}", "start": start}
    if plan:
        try:
            context["sim"] = simulation_schema(session, plan, start=start, end=end)
        except TollwayError as exc:
            context["error"] = error_text(exc)
    return console_page("console/simulator.html", operator, active="simulator", **context)
