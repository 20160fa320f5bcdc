"""Every aggregation, with filters, group-bys, windows in customers' time zones (across DST
changes and a month's end), per span and per billing period, equals the Python reference on the
same events; duplicates count once and voided events not at all."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conformance import reference as ref
from tests.conformance.conftest import Harness
from tollway.event.ingest import IncomingEvent
from tollway.meter.aggregations import REGISTRY
from tollway.meter.definition import MeterDefinition

# Ten days around both DST ends of 2026 (Europe 25 October, United States 1 November) and a
# month's end; Kolkata's half-hour offset puts its hours off the UTC hours the rollups keep.
BASE = datetime(2026, 10, 24, tzinfo=UTC)
SPAN = timedelta(days=10)
ZONES = [ZoneInfo(z) for z in ("UTC", "Europe/Rome", "America/New_York", "Asia/Kolkata")]
FILTERS: list[list[dict[str, Any]]] = [
    [],
    [{"property": "region", "op": "eq", "value": "eu"}],
    [{"property": "region", "op": "neq", "value": "eu"}],
    [{"property": "region", "op": "in", "value": ["eu", "us"]}],
    [{"property": "n", "op": "gt", "value": 2}],
    [{"property": "n", "op": "lte", "value": 5.5}, {"property": "region", "op": "exists"}],
    [{"property": "vip", "op": "eq", "value": True}],
    [{"property": "region", "op": "not_in", "value": ["ap"]}],
]
_examples = itertools.count()

props = st.fixed_dictionaries(
    {},
    optional={
        "n": st.one_of(
            st.integers(-3, 1000),
            st.decimals("-100", "100", places=2).map(float),
            st.sampled_from(["7", True, None]),  # not numbers: such events are left out
        ),
        "region": st.sampled_from(["eu", "us", "ap"]),
        "plan": st.sampled_from(["free", "pro"]),
        "user": st.sampled_from(["u1", "u2", "u3", "u4"]),
        "vip": st.booleans(),
    },
)
one_event = st.tuples(
    st.integers(0, 2),  # customer
    st.integers(-3600, int(SPAN.total_seconds()) + 3600),  # seconds after BASE: some outside the range
    st.sampled_from([0, 0, 500_000]),  # microseconds
    props,
    st.integers(0, 4).map(lambda k: k == 0),  # voided (one in five)
)


def _meters(n: int, filters: list[dict[str, Any]]) -> list[MeterDefinition]:
    return [
        MeterDefinition(
            key=f"m{n}_{agg}",
            event_type=f"t{n}",
            aggregation=agg,
            value_property=None if agg == "count" else ("user" if agg == "unique_count" else "n"),
            filters=tuple(filters),
            group_by=("region",),
        )
        for agg in REGISTRY
    ]


def _load(h: Harness, n: int, drawn: list[tuple[int, int, int, dict[str, Any], bool]]) -> list[ref.Stored]:
    """Store the example's events (and an event of another type, and re-sent duplicates with
    other contents, which must change nothing); void the drawn ones."""
    events = [
        IncomingEvent(f"e{n}-{i:04d}", f"c{n}-{c}", f"t{n}", BASE + timedelta(seconds=s, microseconds=us), dict(p))
        for i, (c, s, us, p, _) in enumerate(drawn)
    ]
    noise = IncomingEvent(f"x{n}", f"c{n}-0", f"other{n}", BASE + timedelta(hours=5), {"n": 1, "region": "eu"})
    assert h.store([*events, noise], datetime.now(UTC)) == len(events) + 1
    resent = [IncomingEvent(e.id, e.customer, e.type, e.timestamp, {"n": 999, "region": "zz"}) for e in events[::2]]
    if resent:
        assert h.store(resent, datetime.now(UTC)) == 0
    voided = [e.id for e, (*_, void) in zip(events, drawn, strict=True) if void]
    at = dict(zip(voided, h.void(*voided), strict=True))
    return [ref.Stored(e, BASE, at.get(e.id)) for e in events]


@given(
    drawn=st.lists(one_event, max_size=40),
    filters=st.sampled_from(FILTERS),
    edges=st.tuples(st.integers(0, 3599), st.integers(0, 3599)),
    queries=st.lists(
        st.tuples(
            st.sampled_from([None, 0, 1]),  # customer (None: every customer)
            st.sampled_from([None, "hour", "day", "month"]),
            st.sampled_from(ZONES),
            st.sampled_from([(), ("region",), ("plan",)]),  # "plan" is not declared: read raw
        ),
        min_size=1,
        max_size=3,
    ),
)
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_aggregation_equals_the_reference(
    event_backend: Harness,
    drawn: list[tuple[int, int, int, dict[str, Any], bool]],
    filters: list[dict[str, Any]],
    edges: tuple[int, int],
    queries: list[tuple[int | None, str | None, ZoneInfo, tuple[str, ...]]],
) -> None:
    n = next(_examples)
    h = event_backend
    meters = _meters(n, filters)
    h.register(*meters)
    stored = _load(h, n, drawn)
    start, end = BASE + timedelta(seconds=edges[0]), BASE + SPAN - timedelta(seconds=edges[1])
    for meter in meters:
        empty = ref.EMPTY[meter.aggregation]
        for c, window, tz, group_by in queries:
            customer = None if c is None else f"c{n}-{c}"
            got = h.backend.usage(
                meter, start=start, end=end, customer=customer, window=window, tz=tz, group_by=group_by
            )
            want = ref.usage(
                meter, stored, start=start, end=end, customer=customer, window=window, tz=tz, group_by=group_by
            )
            where = f"{meter.key} customer={customer} window={window} tz={tz} group_by={group_by}"
            if group_by:
                assert {(u.start, tuple(u.groups.values())): u.value for u in got} == want, where
            else:
                assert [u.start for u in got] == sorted({u.start for u in got}), where
                assert set(k[0] for k in want) <= {u.start for u in got}, where
                assert {u.start: u.value for u in got} == {u.start: want.get((u.start, ()), empty) for u in got}, where
        # Per span (the upcoming invoice's read): ragged spans, one per customer and a repeat.
        spans = [(f"c{n}-{c}", start + timedelta(minutes=17 * c), end - timedelta(minutes=45)) for c in range(3)]
        spans.append(spans[0])
        want_totals = [
            ref.aggregate(meter, ref.counted(meter, stored, start=a, end=b, customer=cu)) for cu, a, b in spans
        ]
        assert h.backend.totals(meter, spans) == want_totals, meter.key
    # Per billing period as of now (the invoice's read): the scalar aggregations in one call.
    scalar = [m for m in meters if REGISTRY[m.aggregation].scalar]
    now = h.backend.clock()
    for c in range(3):
        got_period = h.backend.period_totals(scalar, start=start, end=end, customer=f"c{n}-{c}", as_of=now)
        assert got_period == {
            m.key: ref.aggregate(m, ref.counted(m, stored, start=start, end=end, customer=f"c{n}-{c}")) for m in scalar
        }


def test_values_are_exact_decimals(event_backend: Harness) -> None:
    """Sums of many fractional values are exact (no float rounding), however they are read."""
    h = event_backend
    meter = MeterDefinition(key="exact", event_type="exact", aggregation="sum", value_property="n")
    h.register(meter)
    events = [IncomingEvent(f"d{i}", "c", "exact", BASE + timedelta(minutes=i), {"n": 0.1}) for i in range(300)]
    events.append(IncomingEvent("big", "c", "exact", BASE + timedelta(hours=2), {"n": 12345678901234.01}))
    h.store(events, datetime.now(UTC))
    want = Decimal("30.0") + Decimal("12345678901234.01")
    assert h.backend.totals(meter, [("c", BASE, BASE + SPAN)]) == [want]
    [value] = h.backend.usage(meter, start=BASE, end=BASE + SPAN, customer="c")
    assert value.value == want
    assert h.backend.period_totals([meter], start=BASE, end=BASE + SPAN, customer="c", as_of=h.backend.clock()) == {
        "exact": want
    }


# Integers past the 64-bit signed range (orjson keeps them up to 2**64 - 1), the longest
# fraction a float keeps, tiny and negative values: every aggregation exact on every backend.
EDGE_NUMBERS: list[int | float] = [
    18446744073709551615,
    9223372036854775808,
    -9223372036854775808,
    0.12345678901234568,
    1e-07,
    -1234567.8901234567,
    9223372036854775807,
]


@pytest.mark.parametrize("agg", sorted(ref.NUMBER))
def test_large_and_long_numbers_are_exact(event_backend: Harness, agg: str) -> None:
    h = event_backend
    meter = MeterDefinition(key=f"edge_{agg}", event_type="edge", aggregation=agg, value_property="n")
    h.register(meter)
    events = [
        IncomingEvent(f"v{i}", "c", "edge", BASE + timedelta(hours=i, minutes=7), {"n": v})
        for i, v in enumerate(EDGE_NUMBERS)
    ]
    h.store(events, datetime.now(UTC))
    stored = [ref.Stored(e, BASE) for e in events]
    end = BASE + SPAN
    for k in range(1, len(events) + 1):  # every prefix: each value as the extreme, the latest, the sum
        upto = BASE + timedelta(hours=k)
        want = ref.aggregate(meter, ref.counted(meter, stored, start=BASE, end=upto, customer="c"))
        assert h.backend.totals(meter, [("c", BASE, upto)]) == [want], (agg, k)
        [value] = h.backend.usage(meter, start=BASE, end=upto, customer="c")
        assert value.value == want, (agg, k)
    want_hours = {BASE + timedelta(hours=i): Decimal(str(v)) for i, v in enumerate(EDGE_NUMBERS)}
    for u in h.backend.usage(meter, start=BASE, end=end, customer="c", window="hour"):
        assert u.value == want_hours.get(u.start, ref.EMPTY[agg]), (agg, u.start)
    if REGISTRY[agg].scalar:
        want = ref.aggregate(meter, ref.counted(meter, stored, start=BASE, end=end, customer="c"))
        assert h.backend.period_totals([meter], start=BASE, end=end, customer="c", as_of=h.backend.clock()) == {
            meter.key: want
        }
    values = h.backend.event_values(meter, start=BASE, end=end, customer="c", as_of=h.backend.clock())
    assert values == [Decimal(str(v)) for v in EDGE_NUMBERS]


def test_distinct_large_integers_count_apart(event_backend: Harness) -> None:
    """Ids that are integers past 2**63 (a 64-bit hash): each distinct one counts once, as its
    digits, also in groups (a float's 15 digits would make them one)."""
    h = event_backend
    users = [18446744073709551615, 18446744073709551614, 9223372036854775808, 18446744073709551615, 7]
    distinct = MeterDefinition(key="users", event_type="seen", aggregation="unique_count", value_property="u")
    grouped = MeterDefinition(key="by_user", event_type="seen", aggregation="count", group_by=("u",))
    h.register(distinct, grouped)
    events = [IncomingEvent(f"u{i}", "c", "seen", BASE + timedelta(hours=i), {"u": u}) for i, u in enumerate(users)]
    h.store(events, datetime.now(UTC))
    end = BASE + SPAN
    assert h.backend.totals(distinct, [("c", BASE, end)]) == [Decimal(4)]
    assert h.backend.period_totals([distinct], start=BASE, end=end, customer="c", as_of=h.backend.clock()) == {
        "users": Decimal(4)
    }
    groups = {
        u.groups["u"]: u.value for u in h.backend.usage(grouped, start=BASE, end=end, customer="c", group_by=("u",))
    }
    assert groups == {str(u): Decimal(users.count(u)) for u in set(users)}
