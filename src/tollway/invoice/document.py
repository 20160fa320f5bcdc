"""An invoice as a finance team sends it: every text of the PDF and HTML documents, built once.

:func:`build` turns the API's invoice and its frozen :class:`InvoiceSnapshot` into a
:class:`Document` of display strings: the seller and buyer blocks, the plan, one row per line
(what it is, by meter name; the period it covers; quantity; amount; the pricing details as money in
the invoice currency), the totals (with credits and amount due when the invoice has them), the
payment terms, instructions and status, and the footer. ``render.py`` only lays it out. No
internal identifier (invoice, customer, subscription id, charge code) reaches the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from tollway.invoice.schemas import Invoice
from tollway.invoice.snapshot import InvoiceSnapshot
from tollway.kit.money import format_money, format_price
from tollway.kit.time import get_zone

TIMES = "\u00d7"  # the multiplication sign
STATUS_LABELS = {"paid": "PAID", "void": "VOID", "draft": "DRAFT"}


@dataclass(frozen=True)
class DocLine:
    title: str
    notes: list[str]
    """Smaller lines under the title: the charge, the dimension, how the amount was reached."""
    period: str
    quantity: str
    amount: str


@dataclass(frozen=True)
class Document:
    number: str
    status: str
    stamp: str | None
    """``PAID``, ``VOID`` or ``DRAFT`` across the document, else nothing."""
    issued: str
    due: str
    seller_name: str
    seller_lines: list[str]
    logo_url: str | None
    buyer_name: str
    buyer_lines: list[str]
    facts: list[tuple[str, str]]
    """The summary under the parties: plan, billing period, currency, amount due, due date."""
    currency: str
    lines: list[DocLine]
    totals: list[tuple[str, str, bool]]
    """(label, amount, emphasized), top to bottom."""
    terms: str
    payment_instructions: list[str]
    payment: list[str] = field(default_factory=list)
    payment_url: str | None = None
    footer: str | None = None


def _dec(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _number(value: Any) -> str:
    """A quantity with thousands separators, all its decimals: ``12345`` -> ``12,345``."""
    number = _dec(value)
    if number is None:
        return str(value)
    text = f"{number:,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _plain(value: Any) -> str:
    number = _dec(value)
    return str(value) if number is None else _number(number).replace(",", "")


def _date(moment: datetime | None, tz: ZoneInfo) -> str:
    if moment is None:
        return "-"
    day = moment.astimezone(tz).date()
    return f"{day.day} {day:%b %Y}"


def _span(start: datetime | None, end: datetime | None, tz: ZoneInfo) -> str:
    """``[start, end)`` as the local days it covers, the last one included: ``10 Jan - 31 Jan 2026``."""
    if start is None or end is None:
        return "-"
    first, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    if first == last:
        return _date(start, tz)
    head = f"{first.day} {first:%b}" if first.year == last.year else f"{first.day} {first:%b %Y}"
    return f"{head} - {last.day} {last:%b %Y}"


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _field(source: Any, name: str) -> Any:
    """``source.name`` or ``source[name]``: fields other modules add to the invoice (credits,
    payment) are read when present, whichever shape they take."""
    if isinstance(source, Mapping):
        return source.get(name)
    return getattr(source, name, None)


class _Money:
    def __init__(self, currency: str) -> None:
        self.currency = currency

    def amount(self, value: Any) -> str:
        number = _dec(value)
        return format_money(number, self.currency) if number is not None else str(value)

    def price(self, value: Any) -> str:
        number = _dec(value)
        return format_price(number, self.currency) if number is not None else str(value)


def _tier_notes(details: Mapping[str, Any], money: _Money) -> list[str]:
    notes = []
    for tier in details.get("tiers") or []:
        start, upto = _number(tier.get("from")), tier.get("up_to")
        span = f"above {start}" if upto is None else f"{start} to {_number(upto)}"
        units, unit_price, flat = _number(tier.get("units")), _dec(tier.get("unit_price")), _dec(tier.get("flat_fee"))
        label = f"Tier {tier.get('tier')} ({span})"
        if not unit_price and flat:
            notes.append(f"{label}: {units} units, flat fee {money.price(flat)}")
            continue
        text = f"{label}: {units} {TIMES} {money.price(unit_price or 0)}"
        if flat:
            text += f" + flat fee {money.price(flat)}"
        notes.append(f"{text} = {money.price(tier.get('amount'))}")
    return notes


def _pricing_notes(details: Mapping[str, Any], money: _Money) -> list[str]:
    """How a usage line's amount was reached, in money."""
    model = details.get("model")
    notes = []
    free = _dec(details.get("free_units"))
    if free:
        notes.append(f"{_number(free)} units included free")
    if details.get("free_period"):
        notes.append("Free period: usage not charged")
    if model == "flat" and details.get("unit_price") is not None:
        notes.append(f"{_number(details.get('billable_quantity'))} {TIMES} {money.price(details['unit_price'])}")
    elif model == "package":
        notes.append(
            f"{_number(details.get('packages'))} packages of {_number(details.get('package_size'))} units"
            f" {TIMES} {money.price(details.get('package_price'))}"
        )
    elif model == "percentage":
        notes.append(f"{_number(details.get('rate'))}% of {money.price(details.get('billable_quantity'))}")
        if _dec(details.get("fixed_fees")):
            notes.append(
                f"+ fixed fees {money.price(details.get('fixed_fees'))} on {details.get('charged_events')} events"
            )
    elif model == "bundle" and details.get("bundle_price") is not None:
        notes.append(
            f"{_number(details.get('bundles'))} bundles of {_number(details.get('bundle_size'))} units"
            f" {TIMES} {money.price(details.get('bundle_price'))}"
        )
    notes += _tier_notes(details, money)
    if details.get("above_last_tier"):
        notes.append("Usage above the last tier")
    if details.get("model") == "fixed" and details.get("percent") is not None:  # revenue share
        notes.append(f"{_number(details['percent'])}% of {money.price(details.get('metered_quantity', 0))} revenue")
    for band in details.get("bands") or []:
        upto = band.get("up_to")
        span = (
            f"above {money.price(band.get('from'))}"
            if upto is None
            else f"{money.price(band.get('from'))} to {money.price(upto)}"
        )
        notes.append(
            f"Band {band.get('band')} ({span}): {_number(band.get('percent'))}% = {money.price(band.get('amount'))}"
        )
    return notes


_DIMENSION = re.compile(r"^ \[[^\]]*\]")


def _remainder(description: str, labels: list[str]) -> str:
    """The stored description without its leading charge label (``calls: 10 units`` -> ``10 units``)."""
    for label in labels:
        if label and description.startswith(label):
            rest = _DIMENSION.sub("", description[len(label) :])
            if rest.startswith(": "):
                return rest[2:]
    return description


class _Builder:
    def __init__(self, invoice: Invoice, snap: InvoiceSnapshot) -> None:
        self.invoice = invoice
        self.snap = snap
        self.tz = get_zone(snap.timezone)
        self.money = _Money(invoice.currency or "USD")

    def meter(self, key: str | None) -> str | None:
        return self.snap.meter_names.get(key, key) if key else None

    def line(self, line: Any) -> DocLine:
        details: dict[str, Any] = dict(line.details or {})
        kind: str = line.kind
        charge_name = self.snap.charge_names.get(line.charge) if line.charge else None
        meter = self.meter(line.meter)
        notes: list[str] = []
        period = self.period_of(details)
        if kind in ("usage", "bundle"):
            title = meter or charge_name or "Usage"
            if charge_name and charge_name != title:
                notes.append(charge_name)
            notes += [f"{k}: {v}" for k, v in (details.get("dimension") or {}).items()]
            rest = _remainder(line.description, [charge_name or "", line.charge or ""])
            if rest != f"{_plain(line.quantity)} units":  # the quantity column says it already
                notes.append(rest)
            notes += _pricing_notes(details, self.money)
        elif kind == "recurring_fee":
            title = f"{self.snap.plan_name} subscription" if self.snap.plan_name else "Subscription fee"
            if details.get("prorated"):
                notes.append(
                    f"Prorated: {details.get('days_used')} of {details.get('days_in_period')} days"
                    f" of {self.money.price(details.get('full_amount'))}"
                )
        elif kind == "setup_fee":
            title, period = "Setup fee", "one-time"
        elif kind == "early_termination_fee":
            title, period = "Early termination fee", "one-time"
            ends = _moment(details.get("contract_ends_at"))
            if ends is not None:
                notes.append(f"Contract term until {_date(ends - timedelta(microseconds=1), self.tz)}")
        elif kind == "revenue_share":
            title = "Revenue share"
            if meter:
                notes.append(f"on {meter}")
            notes += _pricing_notes(details, self.money)
        elif kind == "adjustment":
            title = f"Adjustment to invoice {details.get('adjusts_invoice', '')}".strip()
            notes.append(f"{meter or charge_name or 'Usage'}: late or voided events")
            if details.get("billed_amount") is not None:
                price, get = self.money.price, details.get
                billed = f"{price(get('billed_amount'))} for {_number(get('billed_quantity'))}"
                now = f"{price(get('recomputed_amount'))} for {_number(get('recomputed_quantity'))}"
                notes.append(f"Billed {billed}, now {now}")
        else:
            title = line.description
        return DocLine(
            title=title,
            notes=[n for n in notes if n],
            period=period,
            quantity=_number(line.quantity),
            amount=self.money.amount(line.amount),
        )

    def period_of(self, details: Mapping[str, Any]) -> str:
        window = details.get("window") or {}
        start = _moment(window.get("from")) or _moment(details.get("period_start")) or self.invoice.period_start
        end = _moment(window.get("to")) or _moment(details.get("period_end")) or self.invoice.period_end
        return _span(start, end, self.tz)

    def totals(self) -> list[tuple[str, str, bool]]:
        inv, money = self.invoice, self.money
        rows = [("Subtotal", money.amount(inv.subtotal), False)]
        rows.append((f"Tax ({_number(inv.tax_rate or 0)}%)", money.amount(inv.tax), False))
        rows.append(("Total", money.amount(inv.total), True))
        credits = _field(inv, "credits_applied")
        if _dec(credits):
            rows.append(("Credits applied", money.amount(-(_dec(credits) or 0)), False))
        due = _field(inv, "amount_due")
        if due is not None:
            rows[2] = ("Total", money.amount(inv.total), False)
            rows.append(("Amount due", money.amount(due), True))
        return rows

    def terms(self) -> str:
        days = self.snap.payment_terms_days
        due = _date(self.invoice.due_at, self.tz)
        return f"Due on receipt ({due})" if days == 0 else f"Net {days} days: due {due}"

    def payment(self) -> tuple[list[str], str | None]:
        payment = _field(self.invoice, "payment")
        if payment is None:
            return [], None
        status, provider, url = _field(payment, "status"), _field(payment, "provider"), _field(payment, "url")
        lines = [f"Payment: {status}" + (f" ({provider})" if provider else "")] if status else []
        if url:
            lines.append(f"Pay online: {url}")
        return lines, str(url) if url else None


def build(invoice: Invoice, snap: InvoiceSnapshot) -> Document:
    b = _Builder(invoice, snap)
    seller, buyer = snap.seller, snap.buyer
    seller_lines = (seller.address or "").splitlines()
    seller_lines += [f"Tax ID: {seller.tax_id}"] if seller.tax_id else []
    seller_lines += [seller.email] if seller.email else []
    buyer_lines = (buyer.address or "").splitlines()
    buyer_lines += [f"Tax ID: {buyer.tax_id}"] if buyer.tax_id else []
    buyer_lines += [buyer.email] if buyer.email else []
    totals = b.totals()
    facts = []
    if snap.plan_name:
        facts.append(("Plan", snap.plan_name))
    facts.append((f"Billing period ({snap.timezone})", _span(invoice.period_start, invoice.period_end, b.tz)))
    facts.append(("Amount due" if _field(invoice, "amount_due") is not None else "Total", totals[-1][1]))
    facts.append(("Due date", _date(invoice.due_at, b.tz)))
    payment, url = b.payment()
    return Document(
        number=invoice.number or "(draft)",
        status=invoice.status,
        stamp=STATUS_LABELS.get(invoice.status),
        issued=_date(invoice.issued_at, b.tz),
        due=_date(invoice.due_at, b.tz),
        seller_name=seller.name or "",
        seller_lines=seller_lines,
        logo_url=seller.logo_url,
        buyer_name=buyer.name,
        buyer_lines=buyer_lines,
        facts=facts,
        currency=invoice.currency or "",
        lines=[b.line(line) for line in invoice.lines],
        totals=totals,
        terms=b.terms(),
        payment_instructions=(snap.payment_instructions or "").splitlines(),
        payment=payment,
        payment_url=url,
        footer=snap.footer,
    )
