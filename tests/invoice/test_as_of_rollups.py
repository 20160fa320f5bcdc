"""A finalized invoice reads ``count`` and ``sum`` meters as of its cutoff through the rollups: the
present value less the events ingested after the cutoff, plus the events voided after it. It must
be exactly the raw read as of the cutoff, in every state of every event: pending or folded by the
worker's ``apply_pending``, ingested before or after the cutoff, voided before it, after it or
not at all; with filters, values that are not numbers, periods in zones whose midnights fall
mid-hour in UTC and around DST changes, on both databases. And the billing run's invoices are the
invoices the raw read bills."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import create_customer, create_meter, create_plan, send_events, subscribe
from tollway.db import database_now, session_scope
from tollway.invoice.finalize import finalize_next, run_billing
from tollway.meter import values
from tollway.meter.aggregations import REGISTRY, Partial
from tollway.meter.definition import MeterDefinition
from tollway.meter.fold import apply_pending
from tollway.meter.values import Window, meter_totals_many
from tollway.models import Event, Invoice, InvoiceLine, Meter, Plan, Subscription
from tollway.subscription.terms import Terms

START = datetime(2026, 3, 1, 7, 13, 21, 250_000, tzinfo=UTC)  # mid-hour
AT = datetime(2026, 3, 20, tzinfo=UTC)  # inside the first monthly period in every zone
# Zones whose midnights fall mid-hour in UTC, and DST changes inside or at the edge of the period
# (New York on 8 March, Lord Howe's half hour on 5 April).
ZONES = ["Asia/Kolkata", "America/New_York", "Australia/Lord_Howe", "UTC"]
DST = [datetime(2026, 3, 8, 7, 0, tzinfo=UTC), datetime(2026, 4, 4, 15, 0, tzinfo=UTC)]
HOUR = 3600 * 10**6  # microseconds
METERS = [
    {"key": "a_calls", "aggregation": "count"},
    {"key": "a_ok", "aggregation": "count", "filters": [{"property": "status", "op": "lt", "value": 500}]},
    {"key": "a_bytes", "aggregation": "sum", "value_property": "bytes"},
    {"key": "a_eu_bytes", "aggregation": "sum", "value_property": "bytes",
     "filters": [{"property": "region", "op": "eq", "value": "eu"}]},
    {"key": "a_peak", "aggregation": "max", "value_property": "bytes"},  # cannot be corrected: raw
]  # fmt: skip
CHARGES = [
    {"code": "calls", "meter": "a_calls", "model": "package", "package_size": 3, "package_price": "1.00",
     "free_units": 1},
    {"code": "ok", "meter": "a_ok", "model": "flat", "unit_price": "0.07"},
    {"code": "bytes", "meter": "a_bytes", "model": "graduated",
     "tiers": [{"up_to": 500, "unit_price": "0.01"}, {"up_to": None, "unit_price": "0.001"}]},
    {"code": "eu", "meter": "a_eu_bytes", "model": "flat", "unit_price": "0.003"},
    {"code": "peak", "meter": "a_peak", "model": "flat", "unit_price": "0.10"},
]  # fmt: skip

# One event: where (0 the period's start, 1 its end, 2-3 a DST change), the offset from there,
# its value, status, region, when it was ingested (0 before the cutoff, 1 after) and voided
# (0 never, 1 before the cutoff, 2 after it).
event = st.tuples(
    st.integers(0, 3),
    st.integers(-3 * HOUR, 3 * HOUR),
    st.one_of(st.integers(0, 10_000), st.decimals("0", "100", places=3), st.none(), st.just("n/a")),
    st.sampled_from([200, 503]),
    st.sampled_from(["eu", "us", None]),
    st.integers(0, 1),
    st.integers(0, 2),
)


@pytest.fixture
def plan(api):  # type: ignore[no-untyped-def]
    for m in METERS:
        create_meter(api, event_type="api_call", **m)
    create_plan(api, code="asof", charges=CHARGES, publish=True)
    return "asof"


def _period(factory: sessionmaker[Session], sub_id: str) -> tuple[datetime, datetime]:
    with factory() as session:
        sub = session.get(Subscription, sub_id)
        assert sub is not None
        found = Terms.of(sub, session.get(Plan, sub.plan_code)).period_at(AT)
    assert found is not None
    return found[0].start, found[0].end


def _store(api, app, customer: str, period: tuple[datetime, datetime], events, rolled: float, cutoff: datetime):  # type: ignore[no-untyped-def]
    """Send ``events`` for ``customer``, let the worker's fold roll up a share of them, void the
    chosen ones and date their ingestion and voiding before or after ``cutoff``."""
    edges = [period[0], period[1], *DST]
    batch: list[dict[str, Any]] = []
    for i, (where, offset, value, status, region, _, _) in enumerate(events):
        props: dict[str, Any] = {"status": status}
        if value is not None:
            props["bytes"] = value if isinstance(value, int | str) else float(value)
        if region is not None:
            props["region"] = region
        ts = edges[where] + timedelta(microseconds=offset)
        batch.append({"id": f"{customer}-e{i}", "customer": customer, "type": "api_call",
                      "timestamp": ts.isoformat().replace("+00:00", "Z"), "properties": props})  # fmt: skip
    send_events(api, batch)
    factory = app.state.sessionmaker
    if int(rolled * len(batch)):  # the worker folded some of them (with its fold); the others are pending
        with session_scope(factory) as s:
            apply_pending(s, limit=int(rolled * len(batch)), fold=app.state.limits.folding([]))
    for (*_, void), sent in zip(events, batch, strict=True):
        if void:
            assert api.post(f"/v1/events/{sent['id']}/void").status_code == 200
    with session_scope(factory) as s:  # events sent and voided now are after the cutoff
        for (*_, late, void), sent in zip(events, batch, strict=True):
            dates: dict[str, datetime] = {}
            if not late:
                dates["ingested_at"] = cutoff - timedelta(hours=1)
                if void == 1:
                    dates["voided_at"] = cutoff - timedelta(minutes=30)
            if dates:
                s.execute(update(Event).where(Event.id == sent["id"]).values(**dates))


def _meters(session: Session) -> list[MeterDefinition]:
    return [MeterDefinition.from_row(session.get(Meter, m["key"])) for m in METERS]  # type: ignore[arg-type]


def test_as_of_totals_through_the_rollups_equal_the_raw_read(api, app, plan):  # type: ignore[no-untyped-def]
    runs = itertools.count()
    factory = app.state.sessionmaker

    @settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3),
        events=st.lists(st.lists(event, max_size=25), min_size=3, max_size=3),
        rolled=st.sampled_from([0.0, 0.5, 1.0]),  # the share of the events the worker folded
    )
    def check(zones, events, rolled):  # type: ignore[no-untyped-def]
        run = next(runs)
        cutoff = datetime.now(UTC) - timedelta(hours=1)
        windows = []
        for n, zone in enumerate(zones):
            customer = f"r{run}c{n}"
            create_customer(api, id=customer, timezone=zone)
            subscribe(api, id=f"s-{customer}", customer=customer, plan=plan, start=START.isoformat())
            period = _period(factory, f"s-{customer}")
            _store(api, app, customer, period, events[n], rolled, cutoff)
            windows.append(Window(customer, *period))
        windows.append(Window(f"r{run}c0", windows[0].start, DST[0]))  # a window ending at a DST change
        with factory() as session:
            meters = _meters(session)
            assert all(m.rollups_ready for m in meters)
            through = meter_totals_many(session, meters, windows, as_of=cutoff)
            raw = meter_totals_many(session, meters, windows, as_of=cutoff, use_rollups=False)
            live = meter_totals_many(session, meters, windows)
            live_raw = meter_totals_many(session, meters, windows, use_rollups=False)
        assert through == raw, (zones, events, rolled)
        assert live == live_raw

    check()


def _eight_folded_events(api, app, plan, customer: str, zone: str, cutoff: datetime) -> tuple[datetime, datetime]:  # type: ignore[no-untyped-def]
    """A subscribed customer with eight counted events, all folded into the rollups: four
    ingested an hour before ``cutoff``, four after it. Returns the billing period."""
    create_customer(api, id=customer, timezone=zone)
    subscribe(api, id=f"s-{customer}", customer=customer, plan=plan, start=START.isoformat())
    period = _period(app.state.sessionmaker, f"s-{customer}")
    events = [(0, HOUR * (i + 1), i, 200, "eu", i % 2, 0) for i in range(8)]
    _store(api, app, customer, period, events, 1.0, cutoff)
    return period


def test_a_rebuild_started_since_the_meters_were_read_falls_back_to_the_raw_read(api, app, plan):  # type: ignore[no-untyped-def]
    factory = app.state.sessionmaker
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    period = _eight_folded_events(api, app, plan, "rb", "Asia/Kolkata", cutoff)
    with factory() as session:
        meters = _meters(session)  # ready when read...
    with session_scope(factory) as s:  # ...then a rebuild starts: its first step emptied the rows
        s.execute(update(Meter).values(rollup_status="building"))
        s.execute(text("DELETE FROM meter_rollups"))
    with factory() as session:
        [through] = meter_totals_many(session, meters, [Window("rb", *period)], as_of=cutoff)
        [raw] = meter_totals_many(session, meters, [Window("rb", *period)], as_of=cutoff, use_rollups=False)
    assert through == raw
    assert through["a_calls"] == 4  # the four events ingested before the cutoff


def _reads_through_the_rollups(monkeypatch: pytest.MonkeyPatch) -> list[datetime | None]:
    """The cutoffs of the meter totals read through the rollups from now on, one per meter read."""
    reads: list[datetime | None] = []
    real = values.usage_totals

    def spy(session, meter, spans, *, as_of=None):  # type: ignore[no-untyped-def]
        reads.append(as_of)
        return real(session, meter, spans, as_of=as_of)

    monkeypatch.setattr(values, "usage_totals", spy)
    return reads


def test_a_cutoff_older_than_the_horizon_is_read_raw(api, app, plan, monkeypatch):  # type: ignore[no-untyped-def]
    """Correcting the present value for a cutoff days old would read every event ingested since:
    such cutoffs (the simulator's, an old invoice's) are read raw, with the same totals."""
    factory = app.state.sessionmaker
    recent = datetime.now(UTC) - timedelta(hours=1)
    period = _eight_folded_events(api, app, plan, "old", "Europe/Rome", recent)
    old = recent - values.ROLLUP_CUTOFF_HORIZON  # now - 1 day - 1 hour
    with session_scope(factory) as s:  # the events "before the cutoff" were ingested before the old one
        s.execute(update(Event).where(Event.ingested_at < recent).values(ingested_at=old - timedelta(minutes=5)))
    reads = _reads_through_the_rollups(monkeypatch)
    with factory() as session:
        meters = _meters(session)
        [through] = meter_totals_many(session, meters, [Window("old", *period)], as_of=old)
        assert reads == []  # no meter went through the rollups
        [raw] = meter_totals_many(session, meters, [Window("old", *period)], as_of=old, use_rollups=False)
        [recent_read] = meter_totals_many(session, meters, [Window("old", *period)], as_of=recent)
    assert through == raw
    assert through["a_calls"] == 4  # the four events ingested before the old cutoff
    assert reads and all(r == recent for r in reads)  # a recent cutoff still takes the rollups
    assert recent_read["a_calls"] == 4


def _billed(factory: sessionmaker[Session], prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with factory() as session:
        for inv in session.scalars(select(Invoice).where(Invoice.customer_id.like(f"{prefix}%"))):
            lines = session.scalars(
                select(InvoiceLine).where(InvoiceLine.invoice_id == inv.id).order_by(InvoiceLine.position)
            )
            out[inv.customer_id.removeprefix(prefix)] = (
                inv.period_start,
                inv.total_minor,
                [(x.kind, x.charge, x.quantity, x.amount_minor, x.details) for x in lines],
            )
    return out


def test_the_billing_run_bills_what_the_raw_read_bills(api, app, plan, monkeypatch):  # type: ignore[no-untyped-def]
    """Twin customers with the same events in every state: the ``b`` ones billed one invoice at a
    time while the meters read raw (their rollups marked as being built), the ``a`` ones by the
    billing run with its cutoff, through the rollups; every invoice and line agrees."""
    factory = app.state.sessionmaker
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    states = list(itertools.product([0, 1], [0, 1, 2]))  # (late, void)
    rng = range(24)
    for twin in ("a", "b"):
        for n, zone in enumerate(ZONES):
            customer = f"{twin}{n}"
            create_customer(api, id=customer, timezone=zone)
            subscribe(api, id=f"s-{customer}", customer=customer, plan=plan, start=START.isoformat())
            period = _period(factory, f"s-{customer}")
            events = [
                (i % 4, (i * 7919 % 6 - 3) * HOUR + i * 1013, [i * 37, None, "n/a", 12.125][i % 4] if i % 5 else i,
                 200 if i % 3 else 503, ["eu", "us", None][i % 3], *states[(i + n) % len(states)])
                for i in rng
            ]  # fmt: skip
            _store(api, app, customer, period, events, 0.5, cutoff)
    until = max(_period(factory, f"s-a{n}")[1] for n in range(len(ZONES)))
    with session_scope(factory) as s:
        s.execute(update(Meter).values(rollup_status="building"))
    for n in range(len(ZONES)):
        with factory() as session:
            finalize_next(session, f"s-b{n}", until=until, as_of=cutoff, now=database_now(session))
            session.commit()
    with session_scope(factory) as s:
        s.execute(update(Meter).values(rollup_status="ready"))
    reads = _reads_through_the_rollups(monkeypatch)
    # The run's cutoff: 59 minutes ago, between the events dated before the cutoff and those after.
    result = run_billing(factory, until=until, as_of_lag=timedelta(minutes=59))
    assert len(result.created) == len(ZONES) and result.failed == []
    assert reads and all(r is not None for r in reads)  # the additive meters were read through the rollups
    a, b = _billed(factory, "a"), _billed(factory, "b")
    assert len(a) == len(ZONES)
    assert a == b


def test_corrections_and_merges_of_additive_partials_are_exact_at_any_size() -> None:
    total = REGISTRY["sum"]
    huge = Decimal("10000000000000000000000000000000000000000.001")  # 44 digits: past any default context
    corrected = total.correct(Partial(huge), Partial(Decimal("0.001")), Partial(Decimal("0.0000000001")))
    assert corrected.value == Decimal("10000000000000000000000000000000000000000.0000000001")
    assert total.merge(Partial(huge), Partial(Decimal("0.0005"))).value == Decimal(
        "10000000000000000000000000000000000000000.0015"
    )
    assert REGISTRY["count"].correct(Partial(None), Partial(None), Partial(Decimal(2))).value == 2
    with pytest.raises(ValueError, match="cannot be corrected"):
        REGISTRY["max"].correct(Partial(Decimal(1)), Partial(None), Partial(None))
