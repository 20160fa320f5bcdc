"""Pure parts of the limits: windows of a limit, profile versions, exact decimal counters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

from hypothesis import given
from hypothesis import strategies as st

from tollway.limit.counters import join_decimal, split_decimal
from tollway.limit.profile import Cycle, Entry, Profile
from tollway.limit.tally import EXACT, GRACE, CounterKey, Row, increments


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_fixed_windows_follow_the_customers_zone() -> None:
    minute = Entry("s", "m", "minute", Decimal(5), "block")
    day = Entry("s", "m", "day", Decimal(5), "block")
    hour = Entry("s", "m", "hour", Decimal(5), "block")
    # Kathmandu is UTC+5:45: its hours start at :15 UTC, its days at 18:15 UTC.
    ktm = "Asia/Kathmandu"
    assert hour.bounds(t("2026-01-05T10:20:00Z"), ktm) == (t("2026-01-05T10:15:00Z"), t("2026-01-05T11:15:00Z"))
    assert day.bounds(t("2026-01-05T10:20:00Z"), ktm) == (t("2026-01-04T18:15:00Z"), t("2026-01-05T18:15:00Z"))
    assert minute.bounds(t("2026-01-05T10:20:59.999Z"), "Asia/Kathmandu") == (
        t("2026-01-05T10:20:00Z"),
        t("2026-01-05T10:21:00Z"),
    )
    # A DST day in Rome has 23 hours.
    rome = "Europe/Rome"
    assert day.bounds(t("2026-03-29T12:00:00Z"), rome) == (t("2026-03-28T23:00:00Z"), t("2026-03-29T22:00:00Z"))


def test_period_windows_are_the_subscriptions_periods() -> None:
    cycle = Cycle("month", 1, "calendar", "UTC", t("2026-01-10T00:00:00Z"), t("2026-03-15T00:00:00Z"))
    entry = Entry("s", "m", "period", Decimal(5), "block", cycle)
    assert entry.bounds(t("2026-01-20T00:00:00Z"), "UTC") == (t("2026-01-10T00:00:00Z"), t("2026-02-01T00:00:00Z"))
    assert entry.bounds(t("2026-03-01T00:00:00Z"), "UTC") == (t("2026-03-01T00:00:00Z"), t("2026-03-15T00:00:00Z"))
    assert entry.bounds(t("2026-01-09T23:59:59Z"), "UTC") is None  # before the subscription
    assert entry.bounds(t("2026-03-15T00:00:00Z"), "UTC") is None  # after it


def test_profile_version_is_a_hash_of_the_content() -> None:
    a = Entry("s", "m", "day", Decimal(5), "block")
    b = Entry("s", "m", "hour", Decimal(9), "notify")
    one = Profile.of("acme", "UTC", [a, b])
    assert one.version == Profile.of("acme", "UTC", [b, a]).version  # order does not matter
    assert one.version != Profile.of("acme", "Europe/Rome", [a, b]).version
    assert one.version != Profile.of("acme", "UTC", [a, Entry("s", "m", "hour", Decimal(10), "notify")]).version
    assert Profile.from_doc(__import__("orjson").loads(one.to_json())) == one


@given(st.lists(st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=-(10**12), max_value=10**12)))
def test_counter_hashes_add_up_exactly(values: list[Decimal]) -> None:
    fields: dict[int, int] = {}
    for v in values:
        scale, mantissa = split_decimal(v)
        assert Decimal(mantissa).scaleb(-scale, EXACT) == v
        fields[scale] = fields.get(scale, 0) + mantissa
    flat = [x for s, m in fields.items() for x in (str(s), str(m))]
    with localcontext(prec=200):  # the exact sum (the default context keeps 28 digits)
        expected = sum(values, Decimal(0))
    assert join_decimal(flat) == expected


def test_increments_skip_ended_windows_and_take_voids_off() -> None:
    now = t("2026-01-05T10:30:00Z")
    profile = Profile.of("acme", "UTC", [Entry("s", "calls", "hour", Decimal(5), "block")])
    rows = [
        Row("calls", "acme", t("2026-01-05T10:01:00Z"), Decimal(1)),
        Row("calls", "acme", t("2026-01-05T10:02:00Z"), Decimal(1)),
        Row("calls", "acme", now - timedelta(hours=1) - GRACE, Decimal(1)),  # an hour that ended
        Row("calls", "other", t("2026-01-05T10:02:00Z"), Decimal(1)),  # no profile
    ]
    hour = CounterKey("acme", "calls", "hour", t("2026-01-05T10:00:00Z"), t("2026-01-05T11:00:00Z"))
    assert increments(rows, {"acme": profile}, now=now) == {hour: Decimal(2)}
    assert increments(rows[:1], {"acme": profile}, now=now, sign=-1) == {hour: Decimal(-1)}
