"""Overview figures: read from the invoice tables and the stored upcoming totals, and equal to
what the API says invoice by invoice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from tests.factories import create_customer, create_meter, create_plan, send_events, subscribe
from tollway.invoice import forecast, reporting

# In production refreshes look back OVERLAP (60 s) before the newest event they saw, so an event
# whose transaction commits late is not missed; here every event is committed before the refresh.
NO_OVERLAP = timedelta(0)
PLAN = {
    "interval": "month",
    "billing_anchor": "calendar",
    "payment_terms_days": 10,
    "fees": {"recurring": {"amount": "10.00", "in_advance": False, "prorate": True}},
    "charges": [{"code": "units", "meter": "units", "model": "flat", "unit_price": "0.01"}],
}


def _work(cid: str, n: int, day: str, tag: str) -> dict:  # type: ignore[type-arg]
    return {"id": f"{tag}_{cid}", "customer": cid, "type": "work", "timestamp": f"{day}T12:00:00Z",
            "properties": {"n": n}}  # fmt: skip


def _setup(api) -> None:  # type: ignore[no-untyped-def]
    create_meter(api, key="units", event_type="work", aggregation="sum", value_property="n")
    create_plan(api, code="std", publish=True, **PLAN)
    create_plan(api, code="std-eur", publish=True, currency="EUR", **PLAN)
    for cid, plan, cur in (("a", "std", "USD"), ("b", "std", "USD"), ("c", "std-eur", "EUR")):
        create_customer(api, id=cid, name=cid.upper() + " Corp", currency=cur, timezone="UTC")
        subscribe(api, id=f"sub_{cid}", customer=cid, plan=plan, start="2026-01-01T00:00:00Z")
    # January: a 1,000 units -> 10 + 10 = 20.00; b 5,000 -> 60.00; c 200 -> 12.00 EUR
    send_events(api, [_work("a", 1000, "2026-01-10", "j"), _work("b", 5000, "2026-01-10", "j"),
                      _work("c", 200, "2026-01-10", "j")])  # fmt: skip
    r = api.post("/v1/billing/run", json={"until": "2026-02-01T00:00:00Z"})
    assert r.json()["invoices_created"] == 3
    # February so far: a 300 units, c 100 units
    send_events(api, [_work("a", 300, "2026-02-03", "f"), _work("c", 100, "2026-02-03", "f")])


def test_invoiced_monthly_top_and_receivables_match_the_api(api, session_factory) -> None:  # type: ignore[no-untyped-def]
    _setup(api)
    invoices = {i["customer"]: i for i in api.get("/v1/invoices").json()["data"]}
    assert {c: i["total"] for c, i in invoices.items()} == {"a": "20.00", "b": "60.00", "c": "12.00"}
    api.post(f"/v1/invoices/{invoices['b']['id']}/mark-paid")
    now = datetime(2026, 2, 15, tzinfo=UTC)
    jan, feb = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    with session_factory() as s:
        got = {(a.currency, a.amount, a.invoices) for a in reporting.invoiced(s, start=jan, end=feb)}
        assert got == {("EUR", Decimal("12.00"), 1), ("USD", Decimal("80.00"), 2)}
        trend = reporting.monthly(s, now=now, months=3)
        assert [(m.month.month, m.currency, m.amount) for m in trend] == [
            (12, "EUR", Decimal("0.00")), (12, "USD", Decimal("0.00")),
            (1, "EUR", Decimal("12.00")), (1, "USD", Decimal("80.00")),
            (2, "EUR", Decimal("0.00")), (2, "USD", Decimal("0.00")),
        ]  # fmt: skip
        top = reporting.top_customers(s, start=jan, end=feb, limit=2)
        assert [(t.customer, t.name, t.amount) for t in top] == [("b", "B Corp", Decimal("60.00")),
                                                                ("a", "A Corp", Decimal("20.00"))]  # fmt: skip
        # b is paid; a and c were issued (today) with 10 days' terms.
        due_at = datetime.fromisoformat(invoices["a"]["due_at"])
        due, totals = reporting.receivables(s, now=due_at - timedelta(seconds=1))
        assert sorted((d.customer, d.amount, d.overdue) for d in due) == [
            ("a", Decimal("20.00"), False), ("c", Decimal("12.00"), False)
        ]
        due, totals = reporting.receivables(s, now=due_at + timedelta(days=1))
        assert [d.overdue for d in due] == [True, True]
        assert {(t.currency, t.amount) for t in totals} == {("USD", Decimal("20.00")), ("EUR", Decimal("12.00"))}


def test_forecast_refresh_equals_the_upcoming_invoices(api, session_factory) -> None:  # type: ignore[no-untyped-def]
    _setup(api)
    now = datetime(2026, 2, 15, tzinfo=UTC)
    assert forecast.refresh(session_factory, overlap=NO_OVERLAP, now=now) == 3  # every customer with an open period
    api_totals: dict[str, Decimal] = {}
    for cid in ("a", "b", "c"):
        up = api.get(f"/v1/customers/{cid}/upcoming-invoice", params={"at": now.isoformat()}).json()
        api_totals[up["currency"]] = api_totals.get(up["currency"], Decimal(0)) + Decimal(up["total"])
    with session_factory() as s:
        got = {e.currency: (e.amount, e.customers) for e in forecast.expected(s, now=now)}
    # a: 10 + 3.00, b: 10, c: 10 + 1.00 EUR
    assert got == {"USD": (Decimal("23.00"), 2), "EUR": (Decimal("11.00"), 1)}
    assert {k: v[0] for k, v in got.items()} == api_totals
    # Nothing new: nothing recomputed. A new event for b: only b.
    assert forecast.refresh(session_factory, overlap=NO_OVERLAP, now=now) == 0
    send_events(api, [_work("b", 700, "2026-02-04", "g")])
    later = datetime(2026, 2, 16, tzinfo=UTC)
    assert forecast.refresh(session_factory, overlap=NO_OVERLAP, now=later) == 1
    with session_factory() as s:
        got = {e.currency: e.amount for e in forecast.expected(s, now=later)}
    assert got == {"USD": Decimal("30.00"), "EUR": Decimal("11.00")}
    # March: every stored period has ended, so all are recomputed for the new period.
    march = datetime(2026, 3, 2, tzinfo=UTC)
    assert forecast.refresh(session_factory, overlap=NO_OVERLAP, now=march) == 3
    with session_factory() as s:
        assert {e.currency: e.amount for e in forecast.expected(s, now=march)} == {
            "USD": Decimal("20.00"), "EUR": Decimal("10.00")
        }  # fmt: skip
