"""Invoices as documents a person reads: HTML and PDF (fpdf2, pure Python).

Both show the seller, the customer, the period, every line with its tier breakdown, and the
totals, from the same :class:`tollway.invoice.schemas.Invoice` the JSON API returns.
"""

from __future__ import annotations

import html
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fpdf import FPDF

from tollway.invoice.schemas import Invoice
from tollway.models import Customer

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))


def _date(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).date().isoformat() if value is not None else "-"


def _period(invoice: Invoice, tz: ZoneInfo) -> str:
    """The period as local dates, last day included: ``2026-01-01 to 2026-01-31 (Asia/Tokyo)``."""
    if invoice.period_start is None or invoice.period_end is None:
        return "-"
    last = invoice.period_end - timedelta(microseconds=1)
    return f"{_date(invoice.period_start, tz)} to {_date(last, tz)} ({tz.key})"


def _tier_rows(details: dict[str, Any]) -> list[str]:
    rows = []
    for tier in details.get("tiers") or []:
        upto = tier.get("up_to")
        span = f"above {tier.get('from')}" if upto is None else f"{tier.get('from')} to {upto}"
        rows.append(
            f"tier {tier.get('tier')}: {tier.get('units')} units ({span}) "
            f"at {tier.get('unit_price')} + {tier.get('flat_fee')} = {tier.get('amount')}"
        )
    return rows


def _customer_lines(customer: Customer) -> list[str]:
    out = [customer.name or customer.id]
    if customer.company:
        out.append(customer.company)
    if customer.email:
        out.append(customer.email)
    out.append(f"Customer id: {customer.id}")
    return out


def _payment_status(invoice: Invoice) -> str | None:
    """'pending at stripe' ... for an invoice sent to a payment provider."""
    pay = invoice.payment
    return f"{pay.status} ({pay.provider})" if pay is not None else None


def render_html(invoice: Invoice, customer: Customer, seller: str, tz: ZoneInfo) -> str:
    e = html.escape
    rows = []
    for line in invoice.lines:
        tiers = "".join(f"<div class='tier'>{e(t)}</div>" for t in _tier_rows(line.details))
        rows.append(
            f"<tr><td>{e(line.kind)}</td><td>{e(line.description)}{tiers}</td>"
            f"<td class='num'>{e(line.quantity)}</td><td class='num'>{e(line.amount)}</td></tr>"
        )
    cur = e(invoice.currency or "")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {e(invoice.number or "")}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:2rem;color:#222}} table{{border-collapse:collapse;width:100%}}
td,th{{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}} .num{{text-align:right}}
.tier{{color:#666;font-size:.85em}} .parties{{display:flex;gap:4rem}}
</style></head><body>
<h1>Invoice {e(invoice.number or "(draft)")}</h1>
<div class="parties"><div><h3>From</h3><p>{e(seller)}</p></div>
<div><h3>Bill to</h3><p>{"<br>".join(e(x) for x in _customer_lines(customer))}</p></div></div>
<p>Status: {e(invoice.status)}<br>Period: {e(_period(invoice, tz))}<br>
Issued: {_date(invoice.issued_at, tz)} &middot; Due: {_date(invoice.due_at, tz)}<br>
Subscription: {e(invoice.subscription or "")} &middot; Currency: {cur}</p>
<table><thead><tr><th>Kind</th><th>Description</th><th class="num">Quantity</th><th class="num">Amount</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<table style="width:auto;margin-left:auto;margin-top:1rem">
<tr><td>Subtotal</td><td class="num">{e(invoice.subtotal or "")} {cur}</td></tr>
<tr><td>Tax ({e(invoice.tax_rate or "0")}%)</td><td class="num">{e(invoice.tax or "")} {cur}</td></tr>
<tr><th>Total</th><th class="num">{e(invoice.total or "")} {cur}</th></tr></table>
{_payment_html(invoice)}</body></html>
"""


def _payment_html(invoice: Invoice) -> str:
    status = _payment_status(invoice)
    if status is None or invoice.payment is None:
        return ""
    url = invoice.payment.url
    link = f' &middot; <a href="{html.escape(url)}">Pay online</a>' if url else ""
    return f'<p class="payment">Payment: {html.escape(status)}{link}</p>\n'


class _Pdf(FPDF):
    def __init__(self) -> None:
        super().__init__(format="A4")
        self.unicode = False
        for folder in _FONT_DIRS:
            regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
            if regular.exists() and bold.exists():
                self.add_font("body", "", str(regular))
                self.add_font("body", "B", str(bold))
                self.unicode = True
                break

    def use(self, style: str = "", size: float = 10) -> None:
        self.set_font("body" if self.unicode else "helvetica", style, size)

    def text_of(self, value: str) -> str:
        return value if self.unicode else value.encode("latin-1", "replace").decode("latin-1")


def render_pdf(invoice: Invoice, customer: Customer, seller: str, tz: ZoneInfo) -> bytes:
    pdf = _Pdf()
    pdf.set_title(f"Invoice {invoice.number or 'draft'}")
    pdf.set_creator("Tollway")
    pdf.add_page()
    width = pdf.epw
    t = pdf.text_of
    pdf.use("B", 18)
    pdf.cell(width, 10, t(f"Invoice {invoice.number or '(draft)'}"), new_x="LMARGIN", new_y="NEXT")
    pdf.use("", 10)
    pdf.multi_cell(width, 5, t(f"From: {seller}"), new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(width, 5, t("Bill to: " + ", ".join(_customer_lines(customer))), new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(
        width,
        5,
        t(
            f"Period: {_period(invoice, tz)}   Issued: {_date(invoice.issued_at, tz)}   "
            f"Due: {_date(invoice.due_at, tz)}   Status: {invoice.status}"
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.multi_cell(
        width,
        5,
        t(f"Subscription: {invoice.subscription or ''}   Currency: {invoice.currency or ''}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(4)
    cols = (width * 0.58, width * 0.2, width * 0.22)
    pdf.use("B", 10)
    for label, w, align in zip(("Description", "Quantity", "Amount"), cols, ("L", "R", "R"), strict=True):
        pdf.cell(w, 7, label, border="B", align=align)
    pdf.ln()
    for line in invoice.lines:
        pdf.use("", 9)
        y = pdf.get_y()
        pdf.multi_cell(cols[0], 5, t(line.description), new_x="LMARGIN", new_y="NEXT")
        y_after = pdf.get_y()
        if y_after > y:  # same page: put quantity and amount beside the description's first row
            pdf.set_xy(pdf.l_margin + cols[0], y)
            pdf.cell(cols[1], 5, t(line.quantity), align="R")
            pdf.cell(cols[2], 5, t(line.amount), align="R")
            pdf.set_xy(pdf.l_margin, y_after)
        else:
            pdf.set_x(pdf.l_margin + cols[0])
            pdf.cell(cols[1], 5, t(line.quantity), align="R")
            pdf.cell(cols[2], 5, t(line.amount), align="R", new_x="LMARGIN", new_y="NEXT")
        pdf.use("", 8)
        for tier in _tier_rows(line.details):
            pdf.set_x(pdf.l_margin + 6)
            pdf.multi_cell(cols[0] - 6, 4, t(tier), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.use("", 10)
    cur = invoice.currency or ""
    for label, value, style in (
        ("Subtotal", invoice.subtotal, ""),
        (f"Tax ({invoice.tax_rate or '0'}%)", invoice.tax, ""),
        ("Total", invoice.total, "B"),
    ):
        pdf.use(style, 10)
        pdf.cell(cols[0] + cols[1], 6, t(label), align="R")
        pdf.cell(cols[2], 6, t(f"{value or ''} {cur}"), align="R", new_x="LMARGIN", new_y="NEXT")
    status = _payment_status(invoice)
    if status is not None and invoice.payment is not None:
        pdf.ln(4)
        pdf.use("", 10)
        pdf.multi_cell(width, 5, t(f"Payment: {status}"), new_x="LMARGIN", new_y="NEXT")
        if invoice.payment.url:
            url = invoice.payment.url
            pdf.multi_cell(width, 5, t(f"Pay online: {url}"), link=url, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
