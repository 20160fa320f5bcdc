"""Listing invoices reads the lines of a whole page in one query, whatever the page size."""

from __future__ import annotations

from sqlalchemy import event

from tests.factories import calls, create_customer, create_meter, create_plan, run_billing, send_events, subscribe

FLAT = [{"code": "calls", "meter": "api_calls", "model": "flat", "unit_price": "0.50"}]


def test_a_page_of_invoices_reads_its_lines_in_one_query(api, app):
    create_meter(api, key="api_calls", event_type="api_call")
    create_plan(api, code="pro", charges=FLAT, publish=True)
    for c in ("acme", "globex", "initech"):
        create_customer(api, id=c)
        subscribe(api, id=f"s-{c}", customer=c, plan="pro", start="2026-01-01T00:00:00Z")
        send_events(api, calls(c, 3, day="2026-01-05") + calls(c, 2, day="2026-02-05"))
    run_billing(api, "2026-03-01T00:00:00Z")  # two months of three customers: six invoices

    statements: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(app.state.engine, "before_cursor_execute", count)
    try:
        first = api.get("/v1/invoices", params={"limit": 4}).json()
        rest = api.get("/v1/invoices", params={"limit": 4, "after": first["next"]}).json()
    finally:
        event.remove(app.state.engine, "before_cursor_execute", count)

    assert [len(first["data"]), len(rest["data"])] == [4, 2] and rest["next"] is None
    assert all(len(i["lines"]) == 1 for i in first["data"] + rest["data"])
    # each invoice got its own line: 3 calls in January, 2 in February
    assert sorted(
        (i["customer"], i["period_start"][:7], i["lines"][0]["quantity"]) for i in first["data"] + rest["data"]
    ) == [(c, month, n) for c in ("acme", "globex", "initech") for month, n in (("2026-01", "3"), ("2026-02", "2"))]
    line_reads = [s for s in statements if "FROM invoice_lines" in s]
    assert len(line_reads) == 2  # one per page, not one per invoice
