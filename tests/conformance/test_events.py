"""Ingestion, voids, cutoffs and the events list, as any event backend must do them."""

from __future__ import annotations

import itertools
import random
import threading
import time
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conformance import reference as ref
from tests.conformance.conftest import Harness
from tollway.event.ingest import IncomingEvent
from tollway.event.service import EventFilter
from tollway.meter.definition import MeterDefinition

P0, P1 = datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)


def _raw(i: int, customer: str = "c1", **props: object) -> dict[str, object]:
    ts = (P0 + timedelta(hours=i)).isoformat().replace("+00:00", "Z")
    return {"id": f"ev-{i:04d}", "customer": customer, "type": "api", "timestamp": ts, "properties": props}


def _all(h: Harness, filters: EventFilter, limit: int = 500) -> list[str]:
    ids: list[str] = []
    after = None
    while True:
        page = h.backend.list_events(filters, limit=limit, after=after)
        ids += [e.id for e in page.events]
        if page.next is None:
            return ids
        after = page.next


def test_duplicates_are_stored_once_and_reported(event_backend: Harness) -> None:
    h = event_backend
    meter = MeterDefinition(key="calls", event_type="api", aggregation="sum", value_property="n")
    h.register(meter)
    first = h.ingest([_raw(i, n=i) for i in range(10)])
    assert (first.accepted, first.duplicates, first.errors) == (10, 0, [])
    # A retry overlapping the first batch, with other contents for the same ids, and a repeat
    # within the batch: the first contents stay, each repeat is reported as a duplicate.
    again = h.ingest([*(_raw(i, n=1000) for i in range(5, 15)), _raw(14, n=1000)])
    assert (again.accepted, again.duplicates) == (5, 6)
    assert sorted(_all(h, EventFilter())) == [f"ev-{i:04d}" for i in range(15)]
    want = sum(range(10)) + 1000 * 5
    assert h.backend.totals(meter, [("c1", P0, P1)]) == [want]
    [page] = [h.backend.list_events(EventFilter(), limit=500)]
    assert {e.id: e.properties["n"] for e in page.events}["ev-0007"] == 7


def test_concurrent_retries_of_one_batch_store_it_once(event_backend: Harness) -> None:
    """Clients retrying one batch through several hosts at once: every event once, and the
    stored counts the backend reports add up to the batch."""
    h = event_backend
    meter = MeterDefinition(key="calls", event_type="api", aggregation="count")
    h.register(meter)
    now = datetime.now(UTC)
    events = [IncomingEvent(f"r{i:04d}", f"c{i % 7}", "api", P0 + timedelta(minutes=i), {}) for i in range(300)]
    counts: list[int] = []
    errors: list[BaseException] = []

    def send(seed: int) -> None:
        batch = list(events)
        random.Random(seed).shuffle(batch)
        try:
            counts.append(h.store(batch, now))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(counts) == 300
    assert len(_all(h, EventFilter(), limit=120)) == 300
    assert h.backend.totals(meter, [(f"c{c}", P0, P1) for c in range(7)]) == [43, 43, 43, 43, 43, 43, 42]


def test_cutoffs_late_events_and_voids(event_backend: Harness) -> None:
    """An invoice computed as of a cutoff sees the events stored by then and not voided by then,
    and sees them again when recomputed later; what came or went after it is found."""
    h = event_backend
    meters = [
        MeterDefinition(key="n_count", event_type="api", aggregation="count"),
        MeterDefinition(key="n_sum", event_type="api", aggregation="sum", value_property="n"),
        MeterDefinition(key="n_max", event_type="api", aggregation="max", value_property="n"),
        MeterDefinition(key="n_latest", event_type="api", aggregation="latest", value_property="n"),
    ]
    h.register(*meters)
    stored: dict[str, ref.Stored] = {}

    def put(events: list[IncomingEvent]) -> None:
        assert h.store(events, datetime.now(UTC)) == len(events)
        at = h.backend.clock()
        for e in events:
            stored[e.id] = ref.Stored(e, at)

    early = [IncomingEvent(f"a{i}", f"c{i % 3}", "api", P0 + timedelta(days=i), {"n": i + 1}) for i in range(12)] + [
        IncomingEvent("before", "c0", "api", P0 - timedelta(seconds=1), {"n": 50})
    ]
    put(early)
    time.sleep(0.05)
    cutoff = h.backend.clock()
    time.sleep(0.05)
    # Late: c0's events of the period's first days, arriving after the cutoff; c1 loses one.
    late = [
        IncomingEvent(f"late{i}", "c0", "api", P0 + timedelta(hours=i, minutes=30), {"n": 100 + i}) for i in range(3)
    ]
    put(late)
    [voided_at] = h.void("a1")  # c1's
    assert voided_at is not None and voided_at > cutoff
    assert h.void("a1", "no-such-event") == [voided_at, None]  # voiding twice changes nothing
    stored["a1"] = ref.Stored(stored["a1"].event, stored["a1"].ingested_at, voided_at)
    assert all(s.ingested_at <= cutoff for k, s in stored.items() if not k.startswith("late"))

    scalar = meters[:3]
    for customer in ("c0", "c1", "c2"):
        for as_of in (cutoff, None):
            seen = stored.values()
            want = {
                m.key: ref.aggregate(m, ref.counted(m, seen, start=P0, end=P1, customer=customer, as_of=as_of))
                for m in meters
            }
            if as_of is not None:
                got = h.backend.period_totals(scalar, start=P0, end=P1, customer=customer, as_of=as_of)
                assert got == {k: want[k] for k in got}, (customer, as_of)
                values = h.backend.event_values(meters[1], start=P0, end=P1, customer=customer, as_of=as_of)
                assert values == [
                    ref.number(e.properties, "n")
                    for e in ref.counted(meters[1], stored.values(), start=P0, end=P1, customer=customer, as_of=as_of)
                ]
            for m in meters:
                [u] = h.backend.usage(m, start=P0, end=P1, customer=customer, as_of=as_of)
                assert u.value == want[m.key], (m.key, customer, as_of)
    # The invoice of c0 (late events) and of c1 (a void) need a correction; c2's does not, nor
    # does c0's of a period the late events are not in.
    assert h.backend.changed_after("c0", P0, P1, cutoff)
    assert h.backend.changed_after("c1", P0, P1, cutoff)
    assert not h.backend.changed_after("c2", P0, P1, cutoff)
    assert not h.backend.changed_after("c0", P0 + timedelta(days=1), P1, cutoff)
    assert not h.backend.changed_after("c0", P0, P1, h.backend.clock())


_lists = itertools.count()
ID_CHARS = "aAzZ09-_."


@given(
    events=st.lists(
        st.tuples(
            st.text(ID_CHARS, min_size=1, max_size=4),
            st.sampled_from(["c1", "c2", "C1"]),
            st.sampled_from(["api", "job"]),
            st.integers(0, 2),  # few distinct timestamps: many ties, broken by id
        ),
        max_size=25,
        unique_by=lambda t: t[0],
    ),
    limit=st.integers(1, 6),
    by=st.sampled_from(["range", "customer", "type", "both"]),
    void=st.integers(0, 30),
)
@example(  # ids that byte order and case-insensitive or locale orders put apart, at one time
    events=[(i, "c1", "api", 1) for i in ("a", "Z", "_", "-", "0", "A", "z", ".", "aZ", "a_", "a-")],
    limit=2,
    by="both",
    void=3,
)
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_listing_is_newest_first_in_pages(
    event_backend: Harness, events: list[tuple[str, str, str, int]], limit: int, by: str, void: int
) -> None:
    """Newest first (timestamp, then id in byte order, descending), every event once over the
    pages, voided ones included; each example in a day of its own."""
    h = event_backend
    day = P0 + timedelta(days=next(_lists))
    made = [IncomingEvent(f"{day:%m%d}{i}", c, t, day + timedelta(minutes=m), {}) for i, c, t, m in events]
    if made:
        h.store(made, datetime.now(UTC))
    if void < len(made):
        h.void(made[void].id)
    customer = "c1" if by in ("customer", "both") else None
    type_ = "api" if by in ("type", "both") else None
    filters = EventFilter(customer=customer, type=type_, start=day, end=day + timedelta(hours=1))
    want = sorted(
        (e for e in made if customer in (None, e.customer) and type_ in (None, e.type)),
        key=lambda e: (e.timestamp, e.id.encode()),
        reverse=True,
    )
    assert _all(h, filters, limit=limit) == [e.id for e in want]


def test_properties_come_back_as_they_were_sent(event_backend: Harness) -> None:
    """What a backend stores of an event's properties is what the JSON said: nesting, every JSON
    type, escapes and characters outside the BMP, keys that need quoting or are empty, the
    64-bit extremes, decimal fractions."""
    h = event_backend
    props = {
        "s": 'é"\\ 😀 \t/',
        'k"ey': [1, 2.5, {"x": None}, [], {}],
        "b": True,
        "f": False,
        "big": 18446744073709551615,
        "neg": -9223372036854775808,
        "frac": 0.1,
        "nested": {"deeper": {"deepest": ["a", 0, -1.5e-7]}},
        "": "empty key",
    }
    result = h.ingest([_raw(1, **props)])
    assert (result.accepted, result.errors) == (1, [])
    [event] = h.backend.list_events(EventFilter(), limit=10).events
    assert event.properties == props
