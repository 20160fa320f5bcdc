"""Invoice documents: HTML and PDF (fpdf2, pure Python) laid out from one :class:`Document`.

``document.py`` decides every text; this module only places it. Both formats show the same
things in the same order: seller (with logo) and the invoice number, dates and status; the buyer;
a summary (plan, period, amount due, due date); the lines; the totals; payment terms,
instructions and status; the footer. Nothing is fetched from the network: the PDF embeds a logo
only when it is an inline ``data:image`` URL.
"""

from __future__ import annotations

import base64
import binascii
import html
import io
from pathlib import Path

from fpdf import FPDF

from tollway.invoice.document import Document

_FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/dejavu"))
ACCENT = (11, 114, 133)  # the table header and the title
MUTED = (110, 110, 110)


def _logo_bytes(url: str | None) -> bytes | None:
    if not url or not url.startswith("data:image/"):
        return None
    try:
        return base64.b64decode(url.partition(",")[2], validate=True)
    except (binascii.Error, ValueError):
        return None


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:0;background:#f4f5f7}
main{
  max-width:860px;margin:2rem auto;background:#fff;padding:3rem;box-shadow:0 1px 4px rgba(0,0,0,.12);
  position:relative}
header{display:flex;justify-content:space-between;align-items:flex-start;gap:2rem}
.logo{max-height:56px;max-width:220px;display:block;margin-bottom:.5rem}
.seller-name{font-size:1.25rem;font-weight:600}
.muted,.note{color:#6e6e6e}
.doc{text-align:right}
.doc h1{margin:0;color:#0b7285;letter-spacing:.08em;font-size:1.8rem}
.doc dl{display:grid;grid-template-columns:auto auto;gap:.15rem 1rem;margin:.5rem 0 0;justify-content:end}
.doc dt{color:#6e6e6e}
.doc dd{margin:0;text-align:right}
.parties{margin:2rem 0 1rem}
.parties h3,main h3{
  font-size:.75rem;text-transform:uppercase;letter-spacing:.08em;color:#6e6e6e;margin:0 0 .3rem}
.facts{
  display:flex;flex-wrap:wrap;gap:.5rem 2.5rem;background:#f1f7f8;padding:.8rem 1rem;
  margin-bottom:1.5rem}
.facts span{display:block;font-size:.75rem;color:#6e6e6e}
table{border-collapse:collapse;width:100%}
th{background:#0b7285;color:#fff;text-align:left;font-weight:600}
th,td{padding:.5rem .6rem;vertical-align:top}
tbody td{border-bottom:1px solid #e3e3e3}
.num{text-align:right;white-space:nowrap}
.title{font-weight:600}
.note{font-size:.85em}
.totals{width:auto;margin:1rem 0 0 auto;min-width:45%}
.totals td{border:0;padding:.25rem .6rem}
.totals .em td{font-weight:700;font-size:1.1em;border-top:2px solid #222}
.payment{margin-top:2rem}
footer{
  margin-top:2.5rem;padding-top:.8rem;border-top:1px solid #e3e3e3;color:#6e6e6e;font-size:.85em;
  text-align:center}
.stamp{position:absolute;top:9rem;right:3rem;transform:rotate(-12deg);font-size:2.2rem;font-weight:800;
border:4px solid;padding:.1rem .8rem;opacity:.55;letter-spacing:.1em}
.stamp-paid{color:#2b8a3e}
.stamp-void,.stamp-draft{color:#c92a2a}
@media print{body{background:#fff}
main{box-shadow:none;margin:0;max-width:none}}
"""


def render_html(doc: Document) -> str:
    e = html.escape

    def lines(items: list[str]) -> str:
        return "".join(f"<div>{e(x)}</div>" for x in items)

    logo = f'<img class="logo" src="{e(doc.logo_url)}" alt="">' if doc.logo_url else ""
    stamp = f'<div class="stamp stamp-{e(doc.status)}">{e(doc.stamp)}</div>' if doc.stamp else ""
    facts = "".join(f"<div><span>{e(k)}</span><strong>{e(v)}</strong></div>" for k, v in doc.facts)
    rows = []
    for line in doc.lines:
        notes = "".join(f'<div class="note">{e(n)}</div>' for n in line.notes)
        rows.append(
            f"<tr><td><div class='title'>{e(line.title)}</div>{notes}</td><td>{e(line.period)}</td>"
            f"<td class='num'>{e(line.quantity)}</td><td class='num'>{e(line.amount)}</td></tr>"
        )
    totals = "".join(
        f"<tr class='{'em' if em else ''}'><td>{e(label)}</td><td class='num'>{e(value)}</td></tr>"
        for label, value, em in doc.totals
    )
    pay_link = f'<p><a href="{e(doc.payment_url)}">Pay this invoice online</a></p>' if doc.payment_url else ""
    payment = lines([p for p in doc.payment if not p.startswith("Pay online")])
    instructions = f"<h3>How to pay</h3>{lines(doc.payment_instructions)}" if doc.payment_instructions else ""
    footer = f"<footer>{e(doc.footer)}</footer>" if doc.footer else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice {e(doc.number)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head><body><main>
<header><div>{logo}<div class="seller-name">{e(doc.seller_name)}</div>
<div class="muted">{lines(doc.seller_lines)}</div></div>
<div class="doc"><h1>INVOICE</h1><dl><dt>Number</dt><dd>{e(doc.number)}</dd><dt>Issued</dt><dd>{e(doc.issued)}</dd>
<dt>Due</dt><dd>{e(doc.due)}</dd></dl></div></header>
{stamp}
<section class="parties"><h3>Bill to</h3><div class="title">{e(doc.buyer_name)}</div>{lines(doc.buyer_lines)}</section>
<section class="facts">{facts}</section>
<table><thead><tr><th>Description</th><th>Period</th><th class="num">Quantity</th>
<th class="num">Amount ({e(doc.currency)})</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<table class="totals"><tbody>{totals}</tbody></table>
<section class="payment"><h3>Payment terms</h3><div>{e(doc.terms)}</div>{payment}{pay_link}{instructions}</section>
{footer}
</main></body></html>
"""


class _Pdf(FPDF):
    def __init__(self, footer_text: str | None) -> None:
        super().__init__(format="A4")
        self.footer_text = footer_text
        self.unicode = False
        for folder in _FONT_DIRS:
            regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
            if regular.exists() and bold.exists():
                self.add_font("body", "", str(regular))
                self.add_font("body", "B", str(bold))
                self.unicode = True
                break
        self.set_margins(18, 16, 18)
        self.set_auto_page_break(True, margin=24)
        self.alias_nb_pages()

    def use(self, style: str = "", size: float = 9.5, color: tuple[int, int, int] = (34, 34, 34)) -> None:
        self.set_font("body" if self.unicode else "helvetica", style, size)
        self.set_text_color(*color)

    def t(self, value: str) -> str:
        return value if self.unicode else value.encode("latin-1", "replace").decode("latin-1")

    def footer(self) -> None:
        self.set_y(-18)
        self.set_draw_color(220, 220, 220)
        self.line(self.l_margin, self.get_y(), self.w - self.r_margin, self.get_y())
        self.ln(1.5)
        self.use("", 7.5, MUTED)
        if self.footer_text:
            self.multi_cell(self.epw, 3.6, self.t(self.footer_text), align="C", new_x="LMARGIN", new_y="NEXT")
        self.cell(self.epw, 3.6, f"Page {self.page_no()} of {{nb}}", align="C")

    def block(self, x: float, width: float, lines: list[str], height: float = 4.4) -> float:
        """Left-aligned lines at ``x``; returns the y below them."""
        for line in lines:
            self.set_x(x)
            self.multi_cell(width, height, self.t(line), align="L", new_x="LMARGIN", new_y="NEXT")
        return self.get_y()


def render_pdf(doc: Document) -> bytes:
    pdf = _Pdf(doc.footer)
    pdf.set_title(f"Invoice {doc.number}")
    pdf.set_author(doc.seller_name or "Tollway")
    pdf.set_creator("Tollway")
    pdf.add_page()
    width, left = pdf.epw, pdf.l_margin
    top = pdf.get_y()

    # Header: seller (logo, name, address) on the left; INVOICE, number and dates on the right.
    logo = _logo_bytes(doc.logo_url)
    if logo is not None:
        try:
            pdf.image(io.BytesIO(logo), x=left, y=top, h=14)
            pdf.set_y(top + 16)
        except Exception:  # an image fpdf2 cannot read: leave the logo out, never fail the invoice
            pdf.set_y(top)
    pdf.use("B", 13)
    pdf.block(left, width * 0.55, [doc.seller_name] if doc.seller_name else [], 6)
    pdf.use("", 9, MUTED)
    seller_bottom = pdf.block(left, width * 0.55, doc.seller_lines)

    right_x, right_w = left + width * 0.55, width * 0.45
    pdf.set_xy(right_x, top)
    pdf.use("B", 22, ACCENT)
    pdf.cell(right_w, 10, "INVOICE", align="R", new_x="LEFT", new_y="NEXT")
    for label, value in (("Number", doc.number), ("Issued", doc.issued), ("Due", doc.due)):
        pdf.set_x(right_x)
        pdf.use("", 9, MUTED)
        pdf.cell(right_w * 0.5, 5, label, align="R")
        pdf.use("B", 9)
        pdf.cell(right_w * 0.5, 5, pdf.t(value), align="R", new_x="LMARGIN", new_y="NEXT")
    if doc.stamp:
        pdf.set_x(right_x)
        pdf.use("B", 14, (43, 138, 62) if doc.status == "paid" else (201, 42, 42))
        pdf.cell(right_w, 9, doc.stamp, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(max(seller_bottom, pdf.get_y()) + 7)

    # Bill to.
    pdf.use("B", 7.5, MUTED)
    pdf.cell(width, 4.5, "BILL TO", new_x="LMARGIN", new_y="NEXT")
    pdf.use("B", 10)
    pdf.block(left, width * 0.6, [doc.buyer_name], 5)
    pdf.use("", 9)
    pdf.block(left, width * 0.6, doc.buyer_lines)
    pdf.ln(5)

    # Summary strip.
    pdf.set_fill_color(241, 247, 248)
    y = pdf.get_y()
    pdf.rect(left, y, width, 13, style="F")
    col = width / max(len(doc.facts), 1)
    for i, (label, value) in enumerate(doc.facts):
        pdf.set_xy(left + 3 + i * col, y + 2)
        pdf.use("", 7.5, MUTED)
        pdf.cell(col - 3, 4, pdf.t(label), new_x="LEFT", new_y="NEXT")
        pdf.use("B", 8.5)
        pdf.cell(col - 3, 5, pdf.t(value))
    pdf.set_y(y + 18)

    # Lines.
    cols = (width * 0.47, width * 0.23, width * 0.12, width * 0.18)
    heads = ("Description", "Period", "Quantity", f"Amount ({doc.currency})")

    def table_head() -> None:
        pdf.set_fill_color(*ACCENT)
        pdf.use("B", 8.5, (255, 255, 255))
        for head, w, align in zip(heads, cols, ("L", "L", "R", "R"), strict=True):
            pdf.cell(w, 7, pdf.t(head), align=align, fill=True)
        pdf.ln()

    table_head()
    pdf.set_draw_color(227, 227, 227)
    for line in doc.lines:
        if pdf.get_y() > pdf.h - 45:
            pdf.add_page()
            table_head()
        y = pdf.get_y() + 1.5
        pdf.set_xy(left, y)
        pdf.use("B", 9)
        pdf.multi_cell(cols[0] - 2, 4.6, pdf.t(line.title), align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.use("", 7.8, MUTED)
        for note in line.notes:
            pdf.multi_cell(cols[0] - 2, 3.8, pdf.t(note), align="L", new_x="LMARGIN", new_y="NEXT")
        bottom = pdf.get_y()
        if bottom < y:  # the notes ran onto a new page: the other cells go beside their end
            y = pdf.t_margin
        pdf.use("", 8.5)
        pdf.set_xy(left + cols[0], y)
        pdf.multi_cell(cols[1], 4.6, pdf.t(line.period), align="L", new_x="RIGHT", new_y="TOP")
        pdf.use("", 9)
        pdf.cell(cols[2], 4.6, pdf.t(line.quantity), align="R")
        pdf.cell(cols[3], 4.6, pdf.t(line.amount), align="R")
        bottom = max(bottom, y + 5) + 1.5
        pdf.line(left, bottom, left + width, bottom)
        pdf.set_y(bottom)

    # Totals on the right; payment terms, status and instructions on the left, side by side.
    pdf.ln(3)
    pay_lines = [doc.terms, *(p for p in doc.payment if not p.startswith("Pay online"))]
    needed = 4.4 * (len(pay_lines) + len(doc.payment_instructions)) + 14
    if pdf.get_y() + max(needed, 6.5 * len(doc.totals)) > pdf.h - pdf.b_margin:
        pdf.add_page()
    y = pdf.get_y()
    label_w, value_w = width * 0.24, width * 0.18
    totals_x = left + width - label_w - value_w
    for label, value, em in doc.totals:
        if em:
            pdf.set_draw_color(34, 34, 34)
            pdf.line(totals_x, pdf.get_y(), left + width, pdf.get_y())
        pdf.set_x(totals_x)
        pdf.use("B" if em else "", 10.5 if em else 9)
        pdf.cell(label_w, 6.5 if em else 5.5, pdf.t(label))
        pdf.cell(value_w, 6.5 if em else 5.5, pdf.t(value), align="R", new_x="LMARGIN", new_y="NEXT")
    totals_bottom = pdf.get_y()
    pay_w = totals_x - left - 8
    pdf.set_xy(left, y + 1)
    pdf.use("B", 7.5, MUTED)
    pdf.cell(pay_w, 4.5, "PAYMENT TERMS", new_x="LMARGIN", new_y="NEXT")
    pdf.use("", 9)
    pdf.block(left, pay_w, pay_lines)
    if doc.payment_instructions:
        pdf.ln(2)
        pdf.use("B", 7.5, MUTED)
        pdf.cell(pay_w, 4.5, "HOW TO PAY", new_x="LMARGIN", new_y="NEXT")
        pdf.use("", 9)
        pdf.block(left, pay_w, doc.payment_instructions)
    pdf.set_y(max(totals_bottom, pdf.get_y()))
    if doc.payment_url:  # full width, so that the link stays on one line
        pdf.ln(3)
        pdf.use("", 8.5, ACCENT)
        pdf.multi_cell(width, 4.4, pdf.t(f"Pay online: {doc.payment_url}"), align="L", link=doc.payment_url)
    return bytes(pdf.output())
