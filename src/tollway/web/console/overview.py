"""The overview: revenue invoiced for last month's periods and expected this month, a revenue
trend, top customers and invoices due. Every figure is read from the invoice tables or the
worker-kept upcoming totals (:mod:`tollway.invoice.reporting`, :mod:`tollway.invoice.forecast`),
never from raw events, so the page stays fast with many customers."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse

from tollway.deps import SessionDep
from tollway.invoice import forecast, reporting
from tollway.kit.time import utcnow
from tollway.web.console.auth import OperatorDep
from tollway.web.console.common import console_page

router = APIRouter(include_in_schema=False)


def overview_context(session: Session) -> dict[str, Any]:
    now = utcnow()
    this_month = reporting.month_start(now)
    last_month = reporting.month_start(now, months_back=1)
    trend = reporting.monthly(session, now=now, months=12)
    series: dict[str, dict[str, Any]] = defaultdict(lambda: {"x": [], "y": []})
    for point in trend:
        s = series[point.currency]
        s["label"] = f"Invoiced ({point.currency})"
        s["x"].append(int(point.month.timestamp()))
        s["y"].append(float(point.amount))  # drawing only: the figures shown are the decimals
    due, due_totals = reporting.receivables(session, now=now, limit=10)
    issued_this_month = {a.currency: a for a in reporting.invoiced(session, start=this_month, end=now)}
    expected = []
    for item in forecast.expected(session, now=now):
        issued = issued_this_month.get(item.currency)
        expected.append(
            {
                "currency": item.currency,
                "open": item.amount,
                "issued": issued.amount if issued else Decimal(0),
                "total": item.amount + (issued.amount if issued else Decimal(0)),
                "customers": item.customers,
            }
        )
    return {
        "now": now,
        "last_month": last_month,
        "this_month": this_month,
        "invoiced_last_month": reporting.invoiced(session, start=last_month, end=this_month),
        "expected": expected,
        "trend": [{"currency": c, "chart": s} for c, s in sorted(series.items())],
        "top": reporting.top_customers(session, start=last_month, end=this_month, limit=10),
        "due": due,
        "due_totals": due_totals,
    }


@router.get("/console", response_class=HTMLResponse)
def overview(operator: OperatorDep, session: SessionDep) -> HTMLResponse:
    return console_page("console/overview.html", operator, active="overview", **overview_context(session))
