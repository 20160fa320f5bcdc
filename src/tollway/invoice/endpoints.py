from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session
from starlette.responses import HTMLResponse, Response

from tollway.auth.dependencies import require_admin
from tollway.deps import get_session
from tollway.invoice import service
from tollway.invoice.finalize import run_billing
from tollway.invoice.render import render_html, render_pdf
from tollway.invoice.schemas import BillingRunRequest, BillingRunResult, Invoice, UpcomingInvoice
from tollway.kit.listing import ListParams, list_params, time_param
from tollway.kit.pagination import Page
from tollway.kit.time import utcnow

router = APIRouter(tags=["invoices"], dependencies=[Depends(require_admin)])
SessionDep = Annotated[Session, Depends(get_session)]


@router.get("/v1/customers/{customer_id}/upcoming-invoice", response_model=UpcomingInvoice)
def upcoming_invoice(
    customer_id: str,
    session: SessionDep,
    at: Annotated[str | None, Query(description="RFC 3339; default: now")] = None,
) -> UpcomingInvoice:
    moment = time_param("at", at, billing=True) or utcnow()
    return service.upcoming_invoice(session, customer_id, at=moment)


@router.post("/v1/billing/run", response_model=BillingRunResult)
async def billing_run(body: BillingRunRequest, request: Request) -> BillingRunResult:
    """Finalize every subscription period that ended at or before ``until``; idempotent."""
    until = body.until or utcnow()
    result = await run_in_threadpool(run_billing, request.app.state.sessionmaker, until=until)
    return BillingRunResult(
        until=until,
        subscriptions_checked=result.subscriptions,
        invoices_created=len(result.created),
        invoices=result.created,
        failed=[{"subscription": sub, "error": error} for sub, error in result.failed],
    )


@router.get("/v1/invoices", response_model=Page[Invoice])
def list_invoices(
    session: SessionDep,
    params: Annotated[ListParams, Depends(list_params)],
    customer: Annotated[str | None, Query(description="only this customer's invoices")] = None,
    subscription: Annotated[str | None, Query(description="only this subscription's invoices")] = None,
) -> Page[Invoice]:
    rows = service.list_invoices(
        session, customer=customer, subscription=subscription, limit=params.limit, after=params.after
    )
    return Page[Invoice].of(service.to_schemas(session, rows), params.limit, "id", lambda invoice: invoice)


@router.get("/v1/invoices/{invoice_id}", response_model=Invoice)
def get_invoice(invoice_id: str, session: SessionDep) -> Invoice:
    return service.to_schema(session, service.get_invoice(session, invoice_id))


@router.get("/v1/invoices/{invoice_id}/html", response_class=HTMLResponse)
def invoice_html(invoice_id: str, session: SessionDep) -> HTMLResponse:
    return HTMLResponse(render_html(service.invoice_document(session, invoice_id)))


@router.get("/v1/invoices/{invoice_id}/pdf", response_class=Response)
def invoice_pdf(invoice_id: str, session: SessionDep) -> Response:
    document = service.invoice_document(session, invoice_id)
    return Response(
        render_pdf(document),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{document.number}.pdf"'},
    )


@router.post("/v1/invoices/{invoice_id}/mark-paid", response_model=Invoice)
def mark_paid(invoice_id: str, session: SessionDep) -> Invoice:
    return service.to_schema(session, service.mark_paid(session, invoice_id, now=utcnow()))


@router.post("/v1/invoices/{invoice_id}/void", response_model=Invoice)
def void_invoice(invoice_id: str, session: SessionDep) -> Invoice:
    return service.to_schema(session, service.void_invoice(session, invoice_id, now=utcnow()))
